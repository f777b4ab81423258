//! Service-account secrets are stored encrypted: SigV4 needs the plain secret, so hashing is not an option.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

use crate::MetaError;

/// The 256-bit key that encrypts secrets at rest.
#[derive(Clone)]
pub struct MasterKey(pub [u8; 32]);

impl MasterKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        MasterKey(k)
    }

    /// Accepts 64 hex characters or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, MetaError> {
        let text = text.trim();
        let bytes = if text.len() == 64 {
            hex::decode(text).map_err(|e| MetaError::Crypto(e.to_string()))?
        } else {
            B64.decode(text)
                .map_err(|e| MetaError::Crypto(e.to_string()))?
        };
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| MetaError::Crypto("master key must be 32 bytes".into()))?;
        Ok(MasterKey(arr))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// AES-256-GCM with a random nonce per value; stored as base64(nonce || ciphertext).
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl SecretBox {
    pub fn new(key: &MasterKey) -> Self {
        SecretBox {
            cipher: Aes256Gcm::new(&key.0.into()),
        }
    }

    pub fn seal(&self, plain: &str) -> Result<String, MetaError> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|e| MetaError::Crypto(e.to_string()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(B64.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, MetaError> {
        let raw = B64
            .decode(sealed)
            .map_err(|e| MetaError::Crypto(e.to_string()))?;
        if raw.len() < 12 {
            return Err(MetaError::Crypto("sealed secret too short".into()));
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| MetaError::Crypto("cannot decrypt secret: wrong master key?".into()))?;
        String::from_utf8(plain).map_err(|e| MetaError::Crypto(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key_fails() {
        let k = MasterKey::generate();
        let b = SecretBox::new(&k);
        let s = b.seal("wJalrXUtnFEMI/K7MDENG").unwrap();
        assert_ne!(s, "wJalrXUtnFEMI/K7MDENG");
        assert_eq!(b.open(&s).unwrap(), "wJalrXUtnFEMI/K7MDENG");
        let other = SecretBox::new(&MasterKey::generate());
        assert!(other.open(&s).is_err());
        assert_eq!(MasterKey::parse(&k.to_hex()).unwrap().0, k.0);
    }
}
