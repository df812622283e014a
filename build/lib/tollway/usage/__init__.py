"""Usage read models kept beside the raw records: daily rollups and retention."""
