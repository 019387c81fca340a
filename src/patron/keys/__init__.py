"""Key management: the master keyring, wrapped member data keys and system keys.

Rotation lives in ``patron.keys.rotation`` (imported by path: it builds on the
member vault, which itself builds on this package).
"""

from patron.keys.errors import KeyUnwrapError, MissingMasterKeyError
from patron.keys.master import MasterKey, MasterKeyring, key_id
from patron.keys.service import SYSTEM_PURPOSES, KeyService, SystemPurpose, member_owner, system_owner

__all__ = [
    "SYSTEM_PURPOSES",
    "KeyService",
    "KeyUnwrapError",
    "MasterKey",
    "MasterKeyring",
    "MissingMasterKeyError",
    "SystemPurpose",
    "key_id",
    "member_owner",
    "system_owner",
]
