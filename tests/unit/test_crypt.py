"""Location URLs encrypted as Glance stores them with metadata_encryption_key.

The format is rebuilt here from its description (docs/differences.md), independently of
glance_lite.crypt: what Glance wrote must read back, and what we write must read as Glance
reads it."""

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from glance_lite import exceptions
from glance_lite.crypt import LocationCipher, UndecryptableLocation

KEY = "0123456789abcdef"
URL = "file:///var/lib/glance/images/6b3e8a9e-6f0e-4a6f-9d6c-0d9f6b7a1c2d"


def glance_encrypt(key: str, text: str, block: int = 64) -> str:
    """IV, then AES-CBC of the UTF-8 text, a NUL and non-zero filler to `block` bytes."""
    data = text.encode()
    fill = block - len(data) % block - 1
    padded = data + b"\0" + bytes([7]) * fill
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(key.encode()), modes.CBC(iv)).encryptor()
    return base64.urlsafe_b64encode(iv + enc.update(padded) + enc.finalize()).decode()


def glance_decrypt(key: str, stored: str) -> str:
    raw = base64.urlsafe_b64decode(stored)
    dec = Cipher(algorithms.AES(key.encode()), modes.CBC(raw[:16])).decryptor()
    padded = dec.update(raw[16:]) + dec.finalize()
    return padded[: padded.rfind(b"\0")].decode()


@pytest.mark.parametrize("key", ["k" * 16, "k" * 24, "k" * 32])
@pytest.mark.parametrize("url", [URL, "swift+https://u:p@h/v1/c/o", "file:///é/" + "x" * 63])
def test_what_glance_wrote_reads_back_and_what_we_write_reads_as_glance_reads_it(key, url):
    cipher = LocationCipher(key)
    assert cipher.decrypt(glance_encrypt(key, url)) == url
    ours = cipher.encrypt(url)
    assert glance_decrypt(key, ours) == url
    raw = base64.urlsafe_b64decode(ours)
    assert (len(raw) - 16) % 64 == 0  # padded to Glance's 64-byte blocks
    assert url not in ours and cipher.encrypt(url) != ours  # a fresh IV each time


def test_another_key_or_clear_text_is_a_clear_error_not_a_garbled_url():
    stored = LocationCipher(KEY).encrypt(URL)
    for key in ("fedcba9876543210", "x" * 32):
        with pytest.raises(UndecryptableLocation, match="metadata_encryption_key") as caught:
            LocationCipher(key).decrypt(stored)
        assert caught.value.status == 500
    for clear in (URL, "", "c2hvcnQ=", "!!"):
        with pytest.raises(UndecryptableLocation):
            LocationCipher(KEY).decrypt(clear)


@pytest.mark.parametrize("key", ["", "short", "k" * 17, "k" * 33, "é" * 10])
def test_a_key_of_the_wrong_length_is_refused(key):
    with pytest.raises(exceptions.ConfigError, match="16, 24 or 32 bytes"):
        LocationCipher(key)


def test_an_image_body_is_sealed_and_opened_field_by_field():
    cipher = LocationCipher(KEY)
    other = "file:///elsewhere"
    image = {
        "name": "n",
        "location": URL,
        "location_data": [
            {"url": URL, "metadata": {}, "status": "active"},
            {"id": 4, "url": other, "metadata": {"a": 1}, "status": "active"},
        ],
    }
    sealed = cipher.seal_image(image)
    assert image["location"] == URL  # the caller's dict is left alone
    assert sealed["name"] == "n"
    first, second = sealed["location_data"]
    assert first["url"] == sealed["location"] != URL  # one location: one ciphertext
    assert glance_decrypt(KEY, second["url"]) == other
    assert second["id"] == 4 and second["metadata"] == {"a": 1}
    assert cipher.open_image(sealed) == image
    assert cipher.seal_image({"name": "x", "location": None}) == {"name": "x", "location": None}
