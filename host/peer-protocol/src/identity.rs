//! A server's identity in the network: an Ed25519 signing key, made on first start and kept in
//! `<data_dir>/identity.key` (PKCS#8 PEM, mode 0600), and its public half, which names the
//! server to its peers the way a libp2p peer id does: a peer name is bound to one public key.
//!
//! On the wire and on screen a public key is `ed25519:` followed by its 32 bytes in unpadded
//! base64url (43 characters), e.g. `ed25519:1c3p…Qk`; the signature headers carry the part after
//! the colon as their `keyid`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

/// The file name of a server's identity in its data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// The prefix of a public key written as text.
pub const KEY_PREFIX: &str = "ed25519:";

/// Why an identity could not be loaded or made: one line naming the file and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdentityError(pub String);

/// A public key: who a peer is. (Its 32 bytes, checked to be an Ed25519 point when made.)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key's 32 bytes in unpadded base64url: the `keyid` of its signatures.
    pub fn key_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The key from a `keyid` (unpadded base64url of 32 bytes).
    pub fn from_key_id(s: &str) -> Result<PublicKey, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| format!("{s:?} is not unpadded base64url"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{s:?} is not 32 bytes, the size of an Ed25519 public key"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(|_| PublicKey(bytes))
            .map_err(|_| format!("{s:?} is not an Ed25519 public key"))
    }

    /// A short form of the key for people to compare by eye (the consoles show it): the first
    /// 8 bytes of the SHA-256 of its 32 bytes, in hex, as four groups of four digits
    /// (`3fa1-9c02-77de-0b41`). It names the key; only the whole key proves anything.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.0);
        digest[..8]
            .chunks(2)
            .map(|pair| format!("{:02x}{:02x}", pair[0], pair[1]))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        VerifyingKey::from_bytes(&self.0).is_ok_and(|k| k.verify(message, &sig).is_ok())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", self.key_id())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = String;
    /// `ed25519:<base64url>`, or the bare base64url.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        PublicKey::from_key_id(s.strip_prefix(KEY_PREFIX).unwrap_or(s)).map_err(|e| {
            format!("not a public key ({e}); write it as `weft identity` prints it, ed25519:<43 characters>")
        })
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// This server's signing key.
pub struct Identity {
    key: SigningKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public())
    }
}

impl Identity {
    /// A new random identity.
    pub fn generate() -> Identity {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).expect("the operating system's random source");
        Identity {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    /// Its signature of `message` (64 bytes).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The identity kept in `<dir>/identity.key`, made (and written with mode 0600) when the
    /// file is missing. Answers whether it was made now. A file that others may read, or that
    /// is not an Ed25519 PKCS#8 key, is refused with one line saying what to do.
    pub fn load_or_create(dir: &Path) -> Result<(Identity, bool), IdentityError> {
        let path = dir.join(IDENTITY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Identity::read(&path, &text).map(|i| (i, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Identity::generate();
                id.write_new(dir, &path)?;
                Ok((id, true))
            }
            Err(e) => Err(IdentityError(format!(
                "{}: cannot read this server's identity: {e}; check the permissions of the data directory",
                path.display()
            ))),
        }
    }

    fn read(path: &Path, text: &str) -> Result<Identity, IdentityError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(IdentityError(format!(
                        "{}: this server's private key may be read by other users (mode {mode:o}); run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    )));
                }
            }
        }
        SigningKey::from_pkcs8_pem(text)
            .map(|key| Identity { key })
            .map_err(|e| {
                IdentityError(format!(
                    "{}: not an Ed25519 private key in PKCS#8 PEM ({e}); move it away to make a new identity (peers then see a new key: see README, \"Running a network across organisations\")",
                    path.display()
                ))
            })
    }

    fn write_new(&self, dir: &Path, path: &PathBuf) -> Result<(), IdentityError> {
        let fail = |e: std::io::Error| {
            IdentityError(format!(
                "{}: cannot write this server's identity: {e}; set the data directory (data_dir, --data-dir) to a writable one",
                path.display()
            ))
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let pem = self
            .key
            .to_pkcs8_pem(Default::default())
            .map_err(|e| IdentityError(format!("cannot encode the identity: {e}")))?;
        let mut tmp = dir.join(format!("{IDENTITY_FILE}.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(fail)?;
        f.write_all(pem.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        drop(f);
        // Never replace a key another process wrote meanwhile: link, not rename.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        tmp.clear();
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(IdentityError(format!(
                "{}: another process made this server's identity at the same moment; start again",
                path.display()
            ))),
            Err(e) => Err(fail(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_identity_is_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, made) = Identity::load_or_create(dir.path()).unwrap();
        assert!(made);
        let (b, made) = Identity::load_or_create(dir.path()).unwrap();
        assert!(!made);
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(IDENTITY_FILE);
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Identity::load_or_create(dir.path()).unwrap_err().0;
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn public_keys_round_trip_as_text_and_verify_signatures() {
        let id = Identity::generate();
        let text = id.public().to_string();
        assert!(text.starts_with(KEY_PREFIX) && text.len() == KEY_PREFIX.len() + 43);
        let back: PublicKey = text.parse().unwrap();
        assert_eq!(back, id.public());
        assert_eq!(PublicKey::from_key_id(&id.public().key_id()).unwrap(), back);
        let sig = id.sign(b"hello");
        assert!(back.verifies(b"hello", &sig));
        assert!(!back.verifies(b"hellO", &sig));
        assert!(!Identity::generate().public().verifies(b"hello", &sig));
        assert!("ed25519:abc".parse::<PublicKey>().is_err());
    }
}
