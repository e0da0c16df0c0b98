//! How values are stored: [`CacheRow`] (one row: a model, a partial, a tuple, a column value)
//! encoded with bincode's serde support, a compact non-self-describing format (chosen by
//! measurement against postcard and MessagePack: see the README), inside an entry framed with the table
//! generations it was computed under and a checksum, so corrupt or foreign bytes are a miss.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A value the cache can store: every model and partial (`#[derive(Model)]` implements it),
/// and column values and tuples of them, for `load` of a Diesel query that selects columns.
pub trait CacheRow: Sized {
    /// A hash of the stored shape: a model's schema fingerprint for models and partials, the
    /// type for column values. Part of every key, so entries of another shape are never read.
    const SHAPE: u64;
    /// Append the encoded value to `out`.
    fn encode(&self, out: &mut Vec<u8>) -> Result<()>;
    /// Read one value from the front of `input`, advancing it.
    fn decode(input: &mut &[u8]) -> Result<Self>;
}

/// The codec's settings: bincode's standard configuration (little-endian, variable-length
/// integers).
const BINCODE: bincode::config::Configuration = bincode::config::standard();

/// Encode `value` with the cache's serde codec, appending to `out`. Used by generated code.
#[doc(hidden)]
pub fn encode_serde<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    bincode::serde::encode_into_std_write(value, out, BINCODE)
        .map(drop)
        .map_err(|e| Error::Encode(e.to_string()))
}

/// Decode one value with the cache's serde codec from the front of `input`. Used by generated
/// code.
#[doc(hidden)]
pub fn decode_serde<T: DeserializeOwned>(input: &mut &[u8]) -> Result<T> {
    let (value, read) = bincode::serde::decode_from_slice(input, BINCODE)
        .map_err(|e| Error::Decode(e.to_string()))?;
    *input = &input[read..];
    Ok(value)
}

/// Encode `value` as its JSON text with the cache's codec (for JSON columns: their values may
/// need a self-describing format, which the codec is not). Used by generated code.
#[doc(hidden)]
pub fn encode_json_text<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|e| Error::Encode(e.to_string()))?;
    encode_serde(&text, out)
}

/// Decode a value stored by [`encode_json_text`] from the front of `input`. Used by generated
/// code.
#[doc(hidden)]
pub fn decode_json_text<T: DeserializeOwned>(input: &mut &[u8]) -> Result<T> {
    let text: String = decode_serde(input)?;
    serde_json::from_str(&text).map_err(|e| Error::Decode(e.to_string()))
}

/// `const` xxh3 of a type's name, for the shape of column values.
const fn shape_of(name: &str) -> u64 {
    xxhash_rust::const_xxh3::xxh3_64(name.as_bytes())
}

/// Mix two shapes, order-sensitive.
#[doc(hidden)]
pub const fn mix_shape(a: u64, b: u64) -> u64 {
    a.rotate_left(17) ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

macro_rules! serde_rows {
    ($($t:ty),* $(,)?) => {$(
        impl CacheRow for $t {
            const SHAPE: u64 = shape_of(stringify!($t));
            fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
                encode_serde(self, out)
            }
            fn decode(input: &mut &[u8]) -> Result<Self> {
                decode_serde(input)
            }
        }
    )*};
}

serde_rows!(
    bool,
    i16,
    i32,
    i64,
    f32,
    f64,
    String,
    Vec<u8>,
    chrono::NaiveDate,
    chrono::NaiveDateTime,
    chrono::DateTime<chrono::Utc>,
    uuid::Uuid,
);

impl CacheRow for serde_json::Value {
    const SHAPE: u64 = shape_of("serde_json::Value");
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| Error::Encode(e.to_string()))?;
        encode_serde(&text, out)
    }
    fn decode(input: &mut &[u8]) -> Result<Self> {
        let text: String = decode_serde(input)?;
        serde_json::from_str(&text).map_err(|e| Error::Decode(e.to_string()))
    }
}

impl<T: CacheRow> CacheRow for Option<T> {
    const SHAPE: u64 = mix_shape(shape_of("Option"), T::SHAPE);
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out)?;
            }
        }
        Ok(())
    }
    fn decode(input: &mut &[u8]) -> Result<Self> {
        let (&tag, rest) = input
            .split_first()
            .ok_or_else(|| Error::Decode("truncated".to_owned()))?;
        *input = rest;
        match tag {
            0 => Ok(None),
            1 => T::decode(input).map(Some),
            _ => Err(Error::Decode(format!("bad option tag {tag}"))),
        }
    }
}

macro_rules! tuple_rows {
    ($($name:ident)+) => {
        impl<$($name: CacheRow),+> CacheRow for ($($name,)+) {
            const SHAPE: u64 = {
                let mut shape = shape_of("tuple");
                $(shape = mix_shape(shape, $name::SHAPE);)+
                shape
            };
            #[allow(non_snake_case)]
            fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
                let ($($name,)+) = self;
                $($name.encode(out)?;)+
                Ok(())
            }
            fn decode(input: &mut &[u8]) -> Result<Self> {
                Ok(($($name::decode(input)?,)+))
            }
        }
    };
}

tuple_rows!(A);
tuple_rows!(A B);
tuple_rows!(A B C);
tuple_rows!(A B C D);
tuple_rows!(A B C D E);
tuple_rows!(A B C D E F);
tuple_rows!(A B C D E F G);
tuple_rows!(A B C D E F G H);

/// What an entry holds: one row (`find`) or a list (`load`).
pub(crate) trait Payload: Sized {
    const SHAPE: u64;
    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<()>;
    fn decode_payload(input: &mut &[u8]) -> Result<Self>;
}

/// One row.
pub(crate) struct One<T>(pub T);
/// A list of rows.
pub(crate) struct Many<T>(pub Vec<T>);

impl<T: CacheRow> Payload for One<T> {
    const SHAPE: u64 = T::SHAPE;
    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<()> {
        self.0.encode(out)
    }
    fn decode_payload(input: &mut &[u8]) -> Result<Self> {
        T::decode(input).map(One)
    }
}

impl<T: CacheRow> Payload for Many<T> {
    const SHAPE: u64 = mix_shape(shape_of("list"), T::SHAPE);
    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<()> {
        encode_serde(&(self.0.len() as u64), out)?;
        self.0.iter().try_for_each(|row| row.encode(out))
    }
    fn decode_payload(input: &mut &[u8]) -> Result<Self> {
        let len: u64 = decode_serde(input)?;
        // Never trust a length from the cache for an allocation: a corrupt one could be huge.
        let mut rows = Vec::with_capacity((len as usize).min(input.len()));
        for _ in 0..len {
            rows.push(T::decode(input)?);
        }
        Ok(Many(rows))
    }
}

/// First byte of every entry this version writes.
const MAGIC: u8 = 0xC7;
/// Entry format version.
const VERSION: u8 = 1;

/// Frame `payload` as an entry: magic, version, the generations it was computed under, an
/// xxh3 checksum of everything after the checksum, then the payload.
pub(crate) fn encode_entry<P: Payload>(generations: &[u64], payload: &P) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(64);
    body.push(
        u8::try_from(generations.len()).map_err(|_| Error::Encode("too many tables".to_owned()))?,
    );
    for g in generations {
        body.extend_from_slice(&g.to_le_bytes());
    }
    payload.encode_payload(&mut body)?;
    let mut entry = Vec::with_capacity(body.len() + 10);
    entry.extend_from_slice(&[MAGIC, VERSION]);
    entry.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());
    entry.extend_from_slice(&body);
    Ok(entry)
}

/// An entry read back: the generations it was computed under, and its payload bytes.
pub(crate) struct Entry<'a> {
    pub generations: Vec<u64>,
    pub payload: &'a [u8],
}

/// Check an entry's frame and checksum; [`Error::Decode`] for anything this version did not
/// write.
pub(crate) fn open_entry(bytes: &[u8]) -> Result<Entry<'_>> {
    let bad = |what: &str| Error::Decode(what.to_owned());
    if bytes.len() < 11 || bytes[0] != MAGIC || bytes[1] != VERSION {
        return Err(bad("not an entry of this version"));
    }
    let checksum = u64::from_le_bytes(bytes[2..10].try_into().expect("8 bytes"));
    let body = &bytes[10..];
    if xxhash_rust::xxh3::xxh3_64(body) != checksum {
        return Err(bad("checksum mismatch"));
    }
    let count = body[0] as usize;
    let gens_end = 1 + count * 8;
    if body.len() < gens_end {
        return Err(bad("truncated generations"));
    }
    let generations = body[1..gens_end]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    Ok(Entry {
        generations,
        payload: &body[gens_end..],
    })
}

/// Decode a payload that must fill the rest of the entry exactly.
pub(crate) fn decode_exact<P: Payload>(mut payload: &[u8]) -> Result<P> {
    let value = P::decode_payload(&mut payload)?;
    if !payload.is_empty() {
        return Err(Error::Decode("trailing bytes".to_owned()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_reject_tampering() {
        let rows = Many(vec![(1i64, "a".to_owned()), (2, "b".to_owned())]);
        let bytes = encode_entry(&[3, 4], &rows).unwrap();
        let entry = open_entry(&bytes).unwrap();
        assert_eq!(entry.generations, vec![3, 4]);
        let back: Many<(i64, String)> = decode_exact(entry.payload).unwrap();
        assert_eq!(back.0, rows.0);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x55;
            assert!(open_entry(&bad)
                .and_then(|e| decode_exact::<Many<(i64, String)>>(e.payload))
                .is_err());
        }
        assert!(open_entry(b"hello world, not an entry").is_err());
        assert!(open_entry(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn options_and_json_round_trip() {
        let value = (Some(serde_json::json!({"a": [1, 2]})), None::<i32>);
        let mut out = Vec::new();
        value.encode(&mut out).unwrap();
        let back = <(Option<serde_json::Value>, Option<i32>)>::decode(&mut out.as_slice()).unwrap();
        assert_eq!(back, value);
    }
}
