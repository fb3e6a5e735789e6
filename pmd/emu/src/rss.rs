//! Table-driven Toeplitz hashing: the same function as `gdma_defs::toeplitz_hash`, expanded per
//! key into one 256-entry table per input byte, so a hash costs one lookup and one XOR per byte
//! instead of one conditional XOR per bit.

use gdma_defs::MANA_HASH_KEY_SIZE;

/// Longest RSS input: the IPv6 4-tuple.
pub const MAX_INPUT: usize = 36;

/// The expanded key.
pub struct Toeplitz {
    tables: Box<[[u32; 256]; MAX_INPUT]>,
}

impl Toeplitz {
    /// Expands `key`.
    pub fn new(key: &[u8; MANA_HASH_KEY_SIZE]) -> Self {
        let bit = |i: usize| -> u32 {
            ((key.get(i / 8).copied().unwrap_or(0) >> (7 - i % 8)) & 1) as u32
        };
        // The 32 key bits starting at bit i.
        let window = |i: usize| -> u32 { (0..32).fold(0u32, |w, j| (w << 1) | bit(i + j)) };
        let mut tables = Box::new([[0u32; 256]; MAX_INPUT]);
        for (pos, table) in tables.iter_mut().enumerate() {
            let windows: [u32; 8] = core::array::from_fn(|b| window(pos * 8 + b));
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = (0..8).filter(|b| v & (0x80 >> b) != 0).fold(0, |h, b| h ^ windows[b]);
            }
        }
        Toeplitz { tables }
    }

    /// Hash of `input` (at most [`MAX_INPUT`] bytes; longer input is cut).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input.iter().zip(self.tables.iter()).fold(0, |h, (&b, t)| h ^ t[b as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdma_defs::{MANA_DEFAULT_RSS_KEY, MS_RSS_VERIFICATION_KEY, toeplitz_hash};

    #[test]
    fn matches_the_bitwise_definition() {
        for key in [MS_RSS_VERIFICATION_KEY, MANA_DEFAULT_RSS_KEY] {
            let t = Toeplitz::new(&key);
            let mut x = 0x1234_5678u32;
            for len in [8usize, 12, 32, 36] {
                for _ in 0..200 {
                    let input: Vec<u8> = (0..len)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            x as u8
                        })
                        .collect();
                    assert_eq!(t.hash(&input), toeplitz_hash(&key, &input));
                }
            }
        }
    }

    #[test]
    fn microsoft_verification_example() {
        // 66.9.149.187:2794 -> 161.142.100.80:1766 (src, dst, sport, dport): 0x51ccc178.
        let t = Toeplitz::new(&MS_RSS_VERIFICATION_KEY);
        let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(t.hash(&input), 0x51cc_c178);
        assert_eq!(t.hash(&input[..8]), 0x323e_8fc2);
    }
}
