"""Location URLs encrypted at rest, in the format Glance stores with metadata_encryption_key.

When the key is set, glance-api's registry client encrypts each location URL it sends to
the registry and decrypts each one it reads back, so the database holds only ciphertext.
The stored text is URL-safe base64 of a random 16-byte IV followed by the AES-CBC
encryption of: the URL as UTF-8, one NUL byte, then random non-zero bytes that fill it up
to a multiple of the block size Glance uses (64 bytes). Reading takes the text before the
last NUL. Glance's databases encrypted this way are read as they are, and Glance reads
ours.

A key of the wrong length is refused when the service starts. A stored value that does
not decrypt to a URL with the key in use (another key, or a location written in clear
before the key was set) is an error that says so, never a garbled location.
"""

import base64
import binascii
import os
import re
import secrets

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from glance_lite import exceptions

KEY_SIZES = (16, 24, 32)  # bytes: AES-128, AES-192, AES-256
IV_SIZE = 16
PAD_BLOCK = 64  # Glance pads each location to a multiple of 64 bytes
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class UndecryptableLocation(exceptions.GlanceLiteError):
    status = 500

    def __init__(self, detail: str):
        super().__init__(
            f"An image location could not be decrypted ({detail}): the "
            "metadata_encryption_key in use is not the one it was stored with."
        )


class LocationCipher:
    def __init__(self, key: str):
        raw = key.encode("utf-8")
        if len(raw) not in KEY_SIZES:
            raise exceptions.ConfigError(
                f"metadata_encryption_key must be 16, 24 or 32 bytes long, not {len(raw)}"
            )
        self._algorithm = algorithms.AES(raw)

    def encrypt(self, url: str) -> str:
        text = url.encode("utf-8")
        fill = PAD_BLOCK - len(text) % PAD_BLOCK - 1  # after the NUL that ends the text
        padded = text + b"\0" + bytes(secrets.randbelow(255) + 1 for _ in range(fill))
        iv = os.urandom(IV_SIZE)
        encryptor = Cipher(self._algorithm, modes.CBC(iv)).encryptor()
        sealed = encryptor.update(padded) + encryptor.finalize()
        return base64.urlsafe_b64encode(iv + sealed).decode("ascii")

    def decrypt(self, stored: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(stored.encode("ascii"))
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise UndecryptableLocation("it is not base64") from None
        body = raw[IV_SIZE:]
        if not body or len(body) % IV_SIZE:
            raise UndecryptableLocation("it is not a whole number of AES blocks")
        decryptor = Cipher(self._algorithm, modes.CBC(raw[:IV_SIZE])).decryptor()
        padded = decryptor.update(body) + decryptor.finalize()
        end = padded.rfind(b"\0")
        try:
            url = padded[:end].decode("utf-8") if end >= 0 else ""
        except UnicodeDecodeError:
            url = ""
        if not _URL.match(url) or "\0" in url:
            raise UndecryptableLocation("it does not decrypt to a URL")
        return url

    # --- the location fields of a registry image body -----------------------------

    def seal_image(self, image: dict) -> dict:
        """A copy of `image` with `location` and each location_data url encrypted; a url
        equal to `location` gets the same ciphertext, so the registry still sees them as
        one location."""
        sealed = dict(image)
        plain = sealed.get("location")
        if plain:
            sealed["location"] = self.encrypt(plain)
        if sealed.get("location_data"):
            sealed["location_data"] = [
                {**loc, "url": sealed["location"] if plain and loc["url"] == plain
                 else self.encrypt(loc["url"])}
                for loc in sealed["location_data"]
            ]  # fmt: skip
        return sealed

    def open_image(self, image: dict) -> dict:
        """`image` with its location fields decrypted, in place; returned for chaining."""
        if image.get("location"):
            image["location"] = self.decrypt(image["location"])
        if image.get("location_data"):
            image["location_data"] = [
                {**loc, "url": self.decrypt(loc["url"])} for loc in image["location_data"]
            ]
        return image
