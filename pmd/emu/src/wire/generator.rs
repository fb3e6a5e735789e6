//! The traffic generator: an endless stream of UDP/IPv4 frames into a vport's RX, one of
//! `flows` distinct 5-tuples after another; frames the vport transmits are counted and dropped.
//!
//! Frames are built once (correct IPv4 and UDP checksums, destination MAC = the vport's) and
//! handed out without copying, so the generator costs almost nothing per frame and a benchmark of
//! the device measures the device.

use crate::config::GenSpec;
use crate::frame::{ETH_HLEN, ETH_P_IPV4, IPPROTO_UDP};

use super::Port;

/// Source MAC of generated frames.
pub const GEN_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];

/// A generator for one vport.
pub struct Generator {
    /// All frames, back to back, `size` bytes each.
    frames: Vec<u8>,
    size: usize,
    count: usize,
    next: usize,
    /// Frames generated.
    pub generated: u64,
    /// Frames the vport transmitted into the generator (dropped).
    pub sunk: u64,
}

impl Generator {
    /// Frames of `spec.frame_size` bytes to `mac`.
    pub fn new(spec: GenSpec, mac: [u8; 6]) -> Self {
        let size = spec.frame_size as usize;
        let count = spec.flows as usize;
        let mut frames = vec![0u8; size * count];
        for (i, f) in frames.chunks_exact_mut(size).enumerate() {
            build(f, mac, i as u32);
        }
        Generator { frames, size, count, next: 0, generated: 0, sunk: 0 }
    }

    /// The next frame.
    #[inline]
    pub fn next_frame(&mut self) -> &[u8] {
        let i = self.next;
        self.next = if i + 1 == self.count { 0 } else { i + 1 };
        self.generated += 1;
        &self.frames[i * self.size..(i + 1) * self.size]
    }
}

/// Writes flow `flow`'s frame into `f`: 10.1.x.y:(1024 + flow % 50000) -> 10.0.0.1:4789.
fn build(f: &mut [u8], mac: [u8; 6], flow: u32) {
    let total = f.len() - ETH_HLEN;
    f[..6].copy_from_slice(&mac);
    f[6..12].copy_from_slice(&GEN_MAC);
    f[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
    let ip = &mut f[ETH_HLEN..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    ip[12..16].copy_from_slice(&[10, 1, (flow >> 8) as u8, flow as u8]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
    let sport = 1024 + (flow % 50_000) as u16;
    let udp_len = (total - 20) as u16;
    ip[20..22].copy_from_slice(&sport.to_be_bytes());
    ip[22..24].copy_from_slice(&4789u16.to_be_bytes());
    ip[24..26].copy_from_slice(&udp_len.to_be_bytes());
    for (i, b) in ip[28..].iter_mut().enumerate() {
        *b = (i as u32 ^ flow) as u8;
    }
    let l = crate::frame::parse(f);
    crate::frame::fill_ipv4_checksum(f, &l);
    let seed = crate::frame::pseudo_header_seed(f, &l);
    f[ETH_HLEN + 26..ETH_HLEN + 28].copy_from_slice(&seed.to_be_bytes());
    crate::frame::fill_l4_checksum(f, &l);
}

impl Port for Generator {
    fn send(&mut self, _frame: &[u8]) -> bool {
        self.sunk += 1;
        true
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let size = self.size;
        let f = self.next_frame();
        buf[..size].copy_from_slice(f);
        Some(size)
    }

    fn recv_with(&mut self, _buf: &mut [u8], take: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
        Some(take(self.next_frame()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{l4_checksum_ok, parse};

    #[test]
    fn frames_are_valid_and_cycle_through_the_flows() {
        let mut g = Generator::new(GenSpec { frame_size: 60, flows: 3 }, [2, 0, 0, 0, 0, 9]);
        let firsts: Vec<Vec<u8>> = (0..3).map(|_| g.next_frame().to_vec()).collect();
        assert_eq!(g.next_frame(), &firsts[0][..], "wraps to the first flow");
        for f in &firsts {
            assert_eq!(f.len(), 60);
            assert_eq!(&f[..6], &[2, 0, 0, 0, 0, 9]);
            let l = parse(f);
            assert_eq!((l.ip, l.proto), (4, IPPROTO_UDP));
            assert_eq!(crate::frame::ipv4_header_sum(f, l.l3), 0xffff);
            assert!(l4_checksum_ok(f, &l));
        }
        assert_ne!(firsts[0][26..30], firsts[1][26..30], "source addresses differ");
        let big = Generator::new(GenSpec { frame_size: 1514, flows: 1 }, [0; 6]);
        let l = parse(&big.frames);
        assert!(l4_checksum_ok(&big.frames, &l));
    }
}
