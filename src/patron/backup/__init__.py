"""Backups of both stores and the current build, and restoring them into an empty data directory."""

from patron.backup.service import BackupManifest, backup, restore

__all__ = ["BackupManifest", "backup", "restore"]
