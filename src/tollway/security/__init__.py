"""Security at the edge of the process: response headers, trusted proxies, key rotation.

See docs/security.md.
"""
