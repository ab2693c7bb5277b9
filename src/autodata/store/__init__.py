"""The run store (SQLite, WAL) and what is written from it."""
