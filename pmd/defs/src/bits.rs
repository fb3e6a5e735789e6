//! Internal helper macro for the bitfield newtypes used on the hot path.
//!
//! `bitfield!` declares a `#[repr(transparent)]` newtype over an unsigned integer with
//! `const fn` getters and `with_*` setters for every field, plus a `Debug` impl that prints
//! the raw value and each field. Setters mask the value to the field width (they never
//! panic); typed encoders elsewhere in the crate validate ranges and return errors instead.

/// Declares a bitfield newtype. Each field line is either
/// `field NAME, WITH_NAME: TYPE [LOW_BIT, WIDTH];` or `flag NAME, WITH_NAME [BIT];`.
macro_rules! bitfield {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($raw:ty);
        $(
            $(#[$fmeta:meta])*
            $kind:ident $get:ident, $set:ident $(: $fty:ty)? [$lo:expr $(, $width:expr)?];
        )*
    ) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, Default,
            zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::KnownLayout, zerocopy::Immutable,
        )]
        $vis struct $name(pub $raw);

        impl $name {
            /// All bits zero.
            pub const ZERO: Self = Self(0);

            /// The raw integer value.
            #[inline]
            pub const fn raw(self) -> $raw {
                self.0
            }

            $(
                $crate::bits::bitfield_accessor!(
                    $(#[$fmeta])* $kind $get, $set $(: $fty)? [$lo $(, $width)?] ($raw)
                );
            )*
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut d = f.debug_struct(stringify!($name));
                d.field("raw", &format_args!("{:#x}", self.0));
                $( d.field(stringify!($get), &self.$get()); )*
                d.finish()
            }
        }

        impl From<$raw> for $name {
            #[inline]
            fn from(v: $raw) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $raw {
            #[inline]
            fn from(v: $name) -> $raw {
                v.0
            }
        }
    };
}

/// One accessor pair of a [`bitfield!`] newtype.
macro_rules! bitfield_accessor {
    ($(#[$fmeta:meta])* field $get:ident, $set:ident : $fty:ty [$lo:expr, $width:expr] ($raw:ty)) => {
        $(#[$fmeta])*
        #[inline]
        #[must_use]
        pub const fn $get(self) -> $fty {
            ((self.0 >> $lo) & (<$raw>::MAX >> (<$raw>::BITS - $width))) as $fty
        }

        #[doc = concat!("Returns a copy with `", stringify!($get), "` set (masked to the field width).")]
        #[inline]
        #[must_use]
        pub const fn $set(self, v: $fty) -> Self {
            let mask: $raw = <$raw>::MAX >> (<$raw>::BITS - $width);
            Self((self.0 & !(mask << $lo)) | (((v as $raw) & mask) << $lo))
        }
    };
    ($(#[$fmeta:meta])* flag $get:ident, $set:ident [$bit:expr] ($raw:ty)) => {
        $(#[$fmeta])*
        #[inline]
        #[must_use]
        pub const fn $get(self) -> bool {
            (self.0 >> $bit) & 1 != 0
        }

        #[doc = concat!("Returns a copy with `", stringify!($get), "` set or cleared.")]
        #[inline]
        #[must_use]
        pub const fn $set(self, v: bool) -> Self {
            Self((self.0 & !((1 as $raw) << $bit)) | ((v as $raw) << $bit))
        }
    };
}

pub(crate) use bitfield;
pub(crate) use bitfield_accessor;
