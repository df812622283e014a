import redis


def test_private_redis_restarts_empty(private_redis) -> None:  # type: ignore[no-untyped-def]
    c = redis.Redis.from_url(private_redis.url)
    c.set("k", "v")
    private_redis.stop()
    private_redis.start()
    c2 = redis.Redis.from_url(private_redis.url)
    assert c2.get("k") is None


def test_prefix_is_dropped(redis_prefix: str) -> None:
    from redis_support import REDIS_URL

    redis.Redis.from_url(REDIS_URL).set(redis_prefix + "x", "1")
