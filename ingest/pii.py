"""Personal data: header detection, the installation secret and keyed hashing.

Under China's Personal Information Protection Law LoanLens stores no personal data in
clear. ID-card numbers keep only region code, age and gender; borrower ids, phone and
bank-card numbers become HMAC-SHA-256 digests keyed with a per-installation secret;
names, addresses and emergency-contact details are dropped.

The secret is 32 random bytes (hex) in ``~/.config/loanlens/secret.key``, created on first
use with mode 0600; ``LOANLENS_SECRET_FILE`` points elsewhere. It is never logged.
"""

from __future__ import annotations

import hmac
import hashlib
import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_SECRET_FILE = Path("~/.config/loanlens/secret.key")

# Normalised header words (see columns.normalise_header). Checked in this order, so an
# emergency contact's phone (紧急联系人电话) is dropped rather than hashed.
_IDCARD_WORDS = ("身份证", "证件号", "idcard", "idno", "idnumber", "identitycard", "证件号码")
_DROP_WORDS = ("姓名", "地址", "住址", "联系人", "邮箱", "户籍", "家庭住址", "单位地址", "工作单位",
               "配偶", "亲属")
_DROP_EXACT = ("name", "fullname", "customername", "borrowername", "address", "email", "客户名称",
               "借款人名称", "借款人", "客户")
_HASH_WORDS = ("手机号", "手机号码", "联系电话", "电话号码", "移动电话", "手机", "银行卡", "卡号",
               "bankcard", "cardno", "phone", "mobile", "微信", "qq号")
_HASH_EXACT = ("tel", "telephone", "电话")
# Headers containing 手机 that describe a flag rather than a number (PPDai 手机认证).
_NOT_PERSONAL = ("认证", "验证", "是否")


# Free-text columns (normalised header words): they may name people, which no pattern can
# find reliably, so unmatched ones are dropped unless the mapping keeps them as attributes.
_FREE_TEXT_WORDS = ("备注", "说明", "摘要", "描述", "附言")
_FREE_TEXT_EXACT = ("remark", "remarks", "note", "notes", "comment", "comments", "memo", "description")


def is_free_text(key: str) -> bool:
    """Return True for a normalised header of a free-text column (备注, remarks ...)."""
    return key in _FREE_TEXT_EXACT or any(word in key for word in _FREE_TEXT_WORDS)


def header_action(key: str) -> str | None:
    """Return 'pii:idcard', 'pii:drop', 'pii:hash' or None for a normalised header key."""
    if any(word in key for word in _NOT_PERSONAL):
        return None
    if any(word in key for word in _IDCARD_WORDS):
        return "pii:idcard"
    if key in _DROP_EXACT or any(word in key for word in _DROP_WORDS):
        return "pii:drop"
    if key in _HASH_EXACT or any(word in key for word in _HASH_WORDS):
        return "pii:hash"
    return None


def secret_path() -> Path:
    """Return the path of the installation secret (``$LOANLENS_SECRET_FILE`` or the default)."""
    return Path(os.environ.get("LOANLENS_SECRET_FILE") or DEFAULT_SECRET_FILE).expanduser()


def load_secret() -> bytes:
    """Return the installation secret, creating it (32 random bytes, mode 0600) on first use."""
    path = secret_path()
    if path.is_file():
        text = path.read_text(encoding="ascii").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError as error:
            raise ValueError(
                f"secret file {path} does not contain a hex key; delete it to create a new one "
                f"(hashes made with the old key will no longer match)"
            ) from error
        if len(key) < 16:
            raise ValueError(f"secret file {path} contains a key shorter than 16 bytes; delete it to create a new one")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
    logger.info("created a new installation secret at %s", path)
    return key


def hmac_params(key: bytes | None = None) -> dict[str, bytes]:
    """Return the HMAC inner and outer padded keys as bound parameters for ``hmac_sql``."""
    key = load_secret() if key is None else key
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    return {
        "hmac_ipad": bytes(byte ^ 0x36 for byte in block),
        "hmac_opad": bytes(byte ^ 0x5C for byte in block),
    }


def hmac_sql(text_sql: str) -> str:
    """Return SQL computing HMAC-SHA-256 (hex) of the normalised text; NULL stays NULL.

    HMAC(K, m) = SHA256((K xor opad) || SHA256((K xor ipad) || m)), with the padded keys
    bound as ``$hmac_ipad`` / ``$hmac_opad``.
    """
    return (
        f"case when {text_sql} is not null then sha256($hmac_opad || unhex(sha256($hmac_ipad || "
        f"encode(ll_pii_key({text_sql}))))) end"
    )


def hmac_hex(value: str, key: bytes | None = None) -> str:
    """Return the same digest as ``hmac_sql`` for one already-normalised value (for tests)."""
    key = load_secret() if key is None else key
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
