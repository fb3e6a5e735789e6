//! What a port can do ([`DevInfo`]) and what the application asks of it ([`PortConf`]).
//!
//! Flag values follow DPDK's (`RTE_ETH_RX_OFFLOAD_*`, `RTE_ETH_TX_OFFLOAD_*`, `RTE_ETH_RSS_*`), so
//! numbers printed by our testpmd read the same as dpdk-testpmd's.

/// RX offload flags (`RTE_ETH_RX_OFFLOAD_*`).
pub mod rx_offload {
    /// Strip 802.1Q tags into the mbuf's `vlan_tci`.
    pub const VLAN_STRIP: u64 = 1 << 0;
    /// Check IPv4 header checksums (mbuf flags).
    pub const IPV4_CKSUM: u64 = 1 << 1;
    /// Check UDP checksums.
    pub const UDP_CKSUM: u64 = 1 << 2;
    /// Check TCP checksums.
    pub const TCP_CKSUM: u64 = 1 << 3;
    /// Receive frames in several segments.
    pub const SCATTER: u64 = 1 << 13;
    /// Report the RSS hash in the mbuf.
    pub const RSS_HASH: u64 = 1 << 19;
    /// IPv4, UDP and TCP checksum checks together.
    pub const CHECKSUM: u64 = IPV4_CKSUM | UDP_CKSUM | TCP_CKSUM;
}

/// TX offload flags (`RTE_ETH_TX_OFFLOAD_*`).
pub mod tx_offload {
    /// Insert an 802.1Q tag from the mbuf's `vlan_tci`.
    pub const VLAN_INSERT: u64 = 1 << 0;
    /// Compute IPv4 header checksums.
    pub const IPV4_CKSUM: u64 = 1 << 1;
    /// Compute UDP checksums.
    pub const UDP_CKSUM: u64 = 1 << 2;
    /// Compute TCP checksums.
    pub const TCP_CKSUM: u64 = 1 << 3;
    /// TCP segmentation.
    pub const TCP_TSO: u64 = 1 << 5;
    /// Send packets made of several segments.
    pub const MULTI_SEGS: u64 = 1 << 15;
    /// Mbufs may be freed to their pool without refcount checks (one pool, refcount 1).
    pub const MBUF_FAST_FREE: u64 = 1 << 16;
}

/// RSS hash types (`RTE_ETH_RSS_*`).
pub mod rss {
    /// IPv4 (2-tuple).
    pub const IPV4: u64 = 1 << 2;
    /// Fragmented IPv4.
    pub const FRAG_IPV4: u64 = 1 << 3;
    /// TCP over IPv4 (4-tuple).
    pub const NONFRAG_IPV4_TCP: u64 = 1 << 4;
    /// UDP over IPv4 (4-tuple).
    pub const NONFRAG_IPV4_UDP: u64 = 1 << 5;
    /// Other non-fragmented IPv4.
    pub const NONFRAG_IPV4_OTHER: u64 = 1 << 7;
    /// IPv6 (2-tuple).
    pub const IPV6: u64 = 1 << 8;
    /// Fragmented IPv6.
    pub const FRAG_IPV6: u64 = 1 << 9;
    /// TCP over IPv6.
    pub const NONFRAG_IPV6_TCP: u64 = 1 << 10;
    /// UDP over IPv6.
    pub const NONFRAG_IPV6_UDP: u64 = 1 << 11;
    /// Other non-fragmented IPv6.
    pub const NONFRAG_IPV6_OTHER: u64 = 1 << 13;
    /// Every IP type (testpmd `--rss-ip`, `port config all rss ip`).
    pub const IP: u64 =
        IPV4 | FRAG_IPV4 | NONFRAG_IPV4_OTHER | IPV6 | FRAG_IPV6 | NONFRAG_IPV6_OTHER;
    /// TCP types.
    pub const TCP: u64 = NONFRAG_IPV4_TCP | NONFRAG_IPV6_TCP;
    /// UDP types (testpmd `--rss-udp`).
    pub const UDP: u64 = NONFRAG_IPV4_UDP | NONFRAG_IPV6_UDP;
    /// What MANA hashes: IPv4/IPv6 2-tuple and TCP/UDP 4-tuple.
    pub const MANA: u64 =
        IPV4 | NONFRAG_IPV4_TCP | NONFRAG_IPV4_UDP | IPV6 | NONFRAG_IPV6_TCP | NONFRAG_IPV6_UDP;
}

/// How a port reports and handles device errors (`RTE_ETH_ERROR_HANDLE_MODE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrHandleMode {
    /// The driver does nothing; the application must reset the port.
    #[default]
    None,
    /// The driver reports; the application recovers.
    Passive,
    /// The driver recovers by itself and reports ERR_RECOVERING, then RECOVERY_SUCCESS or
    /// RECOVERY_FAILED.
    Proactive,
}

/// Descriptor count limits of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescLim {
    /// Fewest descriptors.
    pub min: u16,
    /// Most descriptors.
    pub max: u16,
    /// Counts must be a multiple of this.
    pub align: u16,
    /// Counts must be a power of two.
    pub pow2: bool,
}

impl DescLim {
    /// Whether `n` descriptors is a valid count.
    pub fn accepts(&self, n: u16) -> bool {
        n >= self.min
            && n <= self.max
            && (self.align <= 1 || n % self.align == 0)
            && (!self.pow2 || n.is_power_of_two())
    }
}

impl std::fmt::Display for DescLim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..={}", self.min, self.max)?;
        if self.align > 1 {
            write!(f, ", a multiple of {}", self.align)?;
        }
        if self.pow2 {
            write!(f, ", a power of two")?;
        }
        Ok(())
    }
}

/// What a port can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevInfo {
    /// Driver name (`mana`, `null`, `ring`).
    pub driver: &'static str,
    /// Device description (the probe string, the device's identity).
    pub device: String,
    /// Most RX queues.
    pub max_rx_queues: u16,
    /// Most TX queues.
    pub max_tx_queues: u16,
    /// RX descriptor limits.
    pub rx_desc_lim: DescLim,
    /// TX descriptor limits.
    pub tx_desc_lim: DescLim,
    /// Largest RX frame.
    pub max_rx_pktlen: u32,
    /// MTU limits.
    pub min_mtu: u16,
    /// MTU limits.
    pub max_mtu: u16,
    /// Most segments in one TX packet.
    pub max_tx_segs: u16,
    /// RX offloads it can do.
    pub rx_offload_capa: u64,
    /// TX offloads it can do.
    pub tx_offload_capa: u64,
    /// RSS hash types it can compute.
    pub flow_type_rss_offloads: u64,
    /// RSS redirection table size (0: no RSS).
    pub reta_size: u16,
    /// RSS hash key size in bytes.
    pub hash_key_size: u8,
    /// How it handles device errors.
    pub err_handle_mode: ErrHandleMode,
    /// Burst size it works best with.
    pub default_burst: u16,
    /// Descriptor counts it works best with (RX, TX).
    pub default_desc: (u16, u16),
}

/// RSS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RssConf {
    /// The hash key (None: keep the driver's default or current one).
    pub key: Option<Vec<u8>>,
    /// Hash types ([`rss`] flags); 0 turns RSS off (everything to queue 0).
    pub hf: u64,
}

/// Port configuration (`rte_eth_conf`, the parts we use).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortConf {
    /// RX offloads ([`rx_offload`]).
    pub rx_offloads: u64,
    /// TX offloads ([`tx_offload`]).
    pub tx_offloads: u64,
    /// RSS over the RX queues (None: no RSS, everything to queue 0).
    pub rss: Option<RssConf>,
    /// MTU (None: the device's default, 1500).
    pub mtu: Option<u16>,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Up or down.
    pub up: bool,
    /// Speed in Mbit/s (0 unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

impl Link {
    /// A link that is up at `speed_mbps`.
    pub const fn up(speed_mbps: u32) -> Self {
        Link { up: true, speed_mbps, full_duplex: true }
    }

    /// A link that is down.
    pub const DOWN: Link = Link { up: false, speed_mbps: 0, full_duplex: false };
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(m: [u8; 6]) -> String {
    format!("{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", m[0], m[1], m[2], m[3], m[4], m[5])
}
