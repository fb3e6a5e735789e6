//! Error values returned by the decoders and encoders of this crate.
//!
//! Nothing in this crate panics on bad input: every decoder of untrusted bytes returns
//! [`DecodeError`], every encoder that validates ranges returns [`EncodeError`].

use core::fmt;

/// Why a byte or dword sequence could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input is shorter than the format requires.
    Truncated {
        /// Bytes required.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// A field holds a value the format does not allow.
    InvalidField {
        /// Name of the field (as in the spec).
        field: &'static str,
        /// The offending value.
        value: u64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, got } => {
                write!(f, "input truncated: need {needed} bytes, got {got}")
            }
            Self::InvalidField { field, value } => {
                write!(f, "invalid value {value:#x} in field `{field}`")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a value could not be encoded into a wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// A value does not fit in its field.
    OutOfRange {
        /// Name of the field (as in the spec).
        field: &'static str,
        /// The offending value.
        value: u64,
        /// Largest value the field can hold.
        max: u64,
    },
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { field, value, max } => {
                write!(f, "value {value:#x} of `{field}` exceeds maximum {max:#x}")
            }
            Self::BufferTooSmall { needed, got } => {
                write!(f, "output buffer too small: need {needed} bytes, got {got}")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// Checks `value <= max`, naming the field in the error.
#[inline]
pub(crate) const fn check_range(
    field: &'static str,
    value: u64,
    max: u64,
) -> Result<(), EncodeError> {
    if value > max { Err(EncodeError::OutOfRange { field, value, max }) } else { Ok(()) }
}

/// Reads a `T` from the start of `bytes` (extra bytes are ignored).
#[inline]
pub(crate) fn read_prefix<T: zerocopy::FromBytes>(bytes: &[u8]) -> Result<T, DecodeError> {
    match T::read_from_prefix(bytes) {
        Ok((v, _)) => Ok(v),
        Err(_) => {
            Err(DecodeError::Truncated { needed: core::mem::size_of::<T>(), got: bytes.len() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_never_panic_on_short_input() {
        assert_eq!(read_prefix::<u32>(&[1, 2, 3, 4, 5]), Ok(0x0403_0201));
        assert_eq!(read_prefix::<u64>(&[0; 4]), Err(DecodeError::Truncated { needed: 8, got: 4 }));
        assert_eq!(
            check_range("x", 5, 4),
            Err(EncodeError::OutOfRange { field: "x", value: 5, max: 4 })
        );
        assert_eq!(check_range("x", 4, 4), Ok(()));
    }
}
