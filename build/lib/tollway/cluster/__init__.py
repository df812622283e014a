"""Scale-out: what several Tollway processes on one PostgreSQL database and one Redis share.

On the embedded default (SQLite, one process) nothing here is used.
"""
