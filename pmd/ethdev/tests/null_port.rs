//! The null port through the whole port API.

use pmd_ethdev::*;
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig};

fn pool(name: &str, n: u32) -> MbufPool {
    let mut c = MbufPoolConfig::new(name, n);
    c.huge = HugePolicy::Never;
    MbufPool::with_config(&c).unwrap()
}

#[test]
fn null_rx_gives_sized_mbufs_tx_frees_them_and_stop_closes_the_gates() {
    let mut reg = Registry::new();
    let ports = reg.probe("null,size=128").unwrap();
    let p = &ports[0];
    let mp = pool("null-a", 1024);
    p.configure(1, 1, &PortConf::default()).unwrap();
    p.rx_queue_setup(0, 512, &mp).unwrap();
    p.tx_queue_setup(0, 512).unwrap();
    let mut rx = p.rx_queue(0).unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    assert!(matches!(p.rx_queue(0), Err(EthError::QueueTaken { .. })));
    let mut b = Pkts::new();
    // Not started: gates closed, nothing moves.
    assert_eq!(rx.rx_burst(&mut b, 32), 0);
    p.start().unwrap();
    assert_eq!(rx.rx_burst(&mut b, 32), 32);
    assert!(b.as_slice().iter().all(|m| m.pkt_len() == 128 && m.port() == p.id()));
    assert_eq!(tx.tx_burst(&mut b), 32);
    assert!(b.is_empty());
    let s = p.stats().unwrap();
    assert_eq!((s.ipackets, s.opackets, s.ibytes), (32, 32, 32 * 128));
    assert_eq!(mp.in_use_count(), 0);
    p.stop().unwrap();
    assert_eq!(rx.rx_burst(&mut b, 32), 0);
    assert!(rx.stopped());
    p.stats_reset().unwrap();
    assert_eq!(p.stats().unwrap().ipackets, 0);
    p.close().unwrap();
    assert_eq!(rx.rx_burst(&mut b, 32), 0);
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn bad_configurations_are_refused_with_the_limits() {
    let mut reg = Registry::new();
    let p = reg.probe("null,queues=2").unwrap().remove(0);
    let e = p.configure(3, 1, &PortConf::default()).unwrap_err().to_string();
    assert!(e.contains("3 RX queues, at most 2"), "{e}");
    let conf = PortConf { rx_offloads: conf::rx_offload::VLAN_STRIP, ..Default::default() };
    assert!(p.configure(1, 1, &conf).unwrap_err().to_string().contains("rx_offloads"));
    let conf = PortConf {
        rss: Some(RssConf { key: Some(vec![0; 7]), hf: conf::rss::IP }),
        ..Default::default()
    };
    assert!(p.configure(1, 1, &conf).unwrap_err().to_string().contains("7 bytes, the key is 40"));
    assert!(matches!(p.start(), Err(EthError::BadState { .. })));
    p.configure(1, 1, &PortConf::default()).unwrap();
    let e = p.start().unwrap_err().to_string();
    assert!(e.contains("RX queue 0 not set up"), "{e}");
    let small = {
        let mut c = MbufPoolConfig::new("null-small", 64);
        c.cache_size = 0;
        c.huge = HugePolicy::Never;
        c.data_room = 256;
        MbufPool::with_config(&c).unwrap()
    };
    let e = p.rx_queue_setup(0, 64, &small).unwrap_err().to_string();
    assert!(e.contains("cannot hold a 1518-byte frame"), "{e}");
}
