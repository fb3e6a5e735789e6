//! Recovery episodes (§11 of the recovery design): a fatal error, a reset request (event 135), a
//! hot removal, or one send queue disabled by the device.
//!
//! Everything here runs on the device's control worker, as steps of its loop: the worker looks
//! at the device every few milliseconds ([`Worker::tick`]); an episode moves on one step per
//! tick, and between ticks the worker serves control calls (stop and close work during an
//! episode; the rest get Busy). No step waits on anything but the queue gates (bursts in
//! flight, no time limit) and device commands with their own timeouts; waiting for the device
//! to come back is a deadline checked each tick, never a sleep.
//!
//! An episode:
//! 1. **Detect** ([`Worker::detect`]): `Active → Quiescing` by compare-and-swap (a storm of
//!    reports starts one episode), the control channel is marked gone (commands fail at once),
//!    every port's dispatch swaps to the removed functions, ERR_RECOVERING is queued; the worker
//!    raises it after the step, with nothing held.
//! 2. **Quiesce and tear down** (next tick): every gate is closed and its burst waited for;
//!    queue states and rings are freed if the device can no longer write them (its registers
//!    read all ones, or it is gone), else kept until it is back fresh; no teardown command is
//!    sent to a device that will drop everything anyway. `TornDown`.
//! 3. **Wait**: each tick, if the device's registers read again (it is back), an attempt:
//!    `Recovering`, bring-up from scratch, the same vports (by MAC), every queue the
//!    application set up with its size and pool, RSS key and table, offloads, MTU, and the
//!    started state. A failed attempt tears down again and waits 100 ms, doubling to 2 s; past
//!    the budget the episode fails.
//! 4. **One terminal event**: RECOVERY_SUCCESS (`Active`), RECOVERY_FAILED (`Failed`, gates
//!    closed), or INTR_RMV (`Removed`, after teardown, no recovery attempted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pmd_ethdev::event::EventType;

use super::{Running, Worker};
use crate::cp::{CpError, DeviceEvent, WqKind, WqSpec};
use crate::state::DevState;

/// First wait after a failed attempt.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// How often a torn-down episode looks whether the device is back (one register read): the
/// time from the device being ready to the attempt is at most this plus a wake-up.
const BACK_POLL: Duration = Duration::from_micros(200);
/// How often an episode looks at the device otherwise (backoff after a failed attempt: the
/// deadline of the next attempt, a removal, a close).
const EPISODE_POLL: Duration = Duration::from_millis(1);
/// Longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Test hooks (shared by the devices made with one set of options).
#[derive(Debug, Default)]
pub struct Hooks {
    /// Every RX burst sleeps this long (µs) inside its gate when non-zero: a slow burst that a
    /// recovery must wait for.
    pub rx_burst_delay_us: AtomicU64,
    /// A recovery attempt sleeps this long (µs) once the device is back, before bringing it
    /// up (state Recovering): room for a test to inject another fault in that phase.
    pub rebuild_delay_us: AtomicU64,
}

impl Hooks {
    /// Makes every RX burst sleep `d` inside its gate (zero: off).
    pub fn set_rx_burst_delay(&self, d: Duration) {
        self.rx_burst_delay_us.store(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// What started an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Event 135: the device asks to be reset.
    ResetRequest,
    /// The device's registers read all ones, or its channel died.
    Fatal,
    /// The device is gone.
    Removed,
}

impl Cause {
    fn describe(self) -> &'static str {
        match self {
            Cause::ResetRequest => "the device requested a reset (event 135)",
            Cause::Fatal => "the device failed (registers read all ones)",
            Cause::Removed => "the device was removed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// ERR_RECOVERING raised; quiesce and tear down next.
    Notified,
    /// Torn down; waiting for the device.
    Waiting,
}

/// An episode under way.
#[derive(Debug)]
pub(crate) struct Episode {
    cause: Cause,
    phase: Phase,
    started: Instant,
    deadline: Instant,
    next_attempt: Instant,
    backoff: Duration,
    attempts: u32,
    /// Another fault arrived while this episode ran.
    restart_pending: bool,
    last_error: Option<CpError>,
    /// When the device was first seen back (its registers readable).
    back_at: Option<Instant>,
}

impl Worker {
    /// One look at the device: events, a dead register page, queue errors, and the next step of
    /// an episode. Returns when to look again: at once when an episode has its next step to
    /// take (after the events of this one are raised), soon while it waits for the device.
    pub(crate) fn tick(&mut self) -> Duration {
        let state = self.state.get();
        if matches!(state, DevState::Closed | DevState::Removed | DevState::Failed) {
            return super::EVENT_POLL;
        }
        self.poll_device();
        let mut cause = None;
        for e in &self.device_events {
            match e {
                DeviceEvent::ResetRequest { .. } => {
                    cause.get_or_insert(Cause::ResetRequest);
                }
                DeviceEvent::Dead => cause = Some(Cause::Fatal),
                _ => {}
            }
        }
        self.device_events.clear();
        match self.episode.as_mut() {
            None => {
                if cause.is_none() && (!self.cp.alive() || self.cp.hung()) {
                    // Registers all ones, or a command that never got its answer.
                    cause = Some(Cause::Fatal);
                }
                if let Some(c) = cause {
                    let c = if self.cp.present() { c } else { Cause::Removed };
                    self.detect(c);
                    // Quiesce and tear down straight after ERR_RECOVERING is raised.
                    return Duration::ZERO;
                }
                self.check_queue_errors();
                if self.episode.is_some() {
                    // A send queue that could not be recreated started an episode.
                    return Duration::ZERO;
                }
                super::EVENT_POLL
            }
            Some(ep) => {
                if cause.is_some() {
                    ep.restart_pending = true;
                }
                self.advance();
                match &self.episode {
                    None => super::EVENT_POLL,
                    Some(ep) if ep.phase == Phase::Notified => Duration::ZERO,
                    Some(ep) if ep.next_attempt <= Instant::now() => BACK_POLL,
                    Some(_) => EPISODE_POLL,
                }
            }
        }
    }

    /// Starts an episode (once, however many sources report the fault).
    pub(crate) fn detect(&mut self, cause: Cause) {
        if !self.state.begin_episode() {
            if let Some(ep) = self.episode.as_mut() {
                ep.restart_pending = true;
            }
            return;
        }
        // Commands fail at once from now on: the channel of a device that is resetting or dead
        // does not answer.
        self.cp.mark_gone(cause.describe());
        let now = Instant::now();
        self.episode = Some(Episode {
            cause,
            phase: Phase::Notified,
            started: now,
            deadline: now + self.opts.recovery_budget,
            next_attempt: now,
            backoff: BACKOFF_FIRST,
            attempts: 0,
            restart_pending: false,
            last_error: None,
            back_at: None,
        });
        for p in 0..self.ports.len() {
            if let Some(ctx) = &self.ports[p].ctx {
                // New bursts stop early; the gates (next step) are what makes it safe.
                ctx.dispatch.set_removed();
            }
            if !self.ports[p].closed {
                self.ports[p].counters.recoveries.inc();
            }
            self.queue_event(p, EventType::ErrRecovering, None, cause.describe().to_owned());
        }
    }

    /// The next step of the episode.
    fn advance(&mut self) {
        let Some(mut ep) = self.episode.take() else { return };
        match ep.phase {
            Phase::Notified => {
                self.quiesce_and_tear_down();
                if ep.cause == Cause::Removed || !self.cp.present() {
                    self.finish_removed();
                    return;
                }
                self.state.set(DevState::TornDown);
                ep.phase = Phase::Waiting;
                self.episode = Some(ep);
            }
            Phase::Waiting => {
                let now = Instant::now();
                if !self.cp.present() {
                    self.finish_removed();
                    return;
                }
                if now >= ep.deadline {
                    self.finish_failed(&ep);
                    return;
                }
                if now < ep.next_attempt || !self.cp.alive() {
                    self.episode = Some(ep);
                    return;
                }
                ep.back_at.get_or_insert(now);
                ep.attempts += 1;
                ep.restart_pending = false;
                self.state.set(DevState::Recovering);
                let r = self.rebuild();
                match r {
                    Ok(()) if !ep.restart_pending && self.cp.alive() => {
                        self.finish_success(&ep);
                    }
                    r => {
                        // Failed, or another fault during the attempt: down again, and retry
                        // after the backoff.
                        ep.last_error = r.err().or(Some(CpError::DeviceGone {
                            why: "another fault during the recovery".into(),
                        }));
                        self.cp.mark_gone("recovery attempt failed");
                        self.quiesce_and_tear_down();
                        self.state.set(DevState::TornDown);
                        ep.next_attempt = Instant::now() + ep.backoff;
                        ep.backoff = (ep.backoff * 2).min(BACKOFF_MAX);
                        self.episode = Some(ep);
                    }
                }
            }
        }
    }

    /// Closes every gate (waiting for bursts in flight), takes the device objects away and
    /// frees the buffers if the device can no longer write them.
    fn quiesce_and_tear_down(&mut self) {
        for p in 0..self.ports.len() {
            if let Some(ctx) = &self.ports[p].ctx {
                ctx.dispatch.set_removed();
            }
            self.close_gates(p);
        }
        for p in 0..self.ports.len() {
            if let Some(run) = self.ports[p].running.take() {
                // No destroy commands: the device drops its objects when it resets, and its
                // channel is marked gone. The rings stay ours until it can no longer write them.
                self.deferred.push((p, run));
            }
        }
        // A device in reset keeps our memory registered (and the channel's memory for the next
        // channel); one that is not is torn down completely.
        let _ = self.cp.tear_down_reset();
        if !self.cp.alive() && self.cp.present() {
            // In reset: it can no longer write the rings, and comes back without the objects
            // that could; the ports' next start takes its rings from them again.
            self.release_deferred(true);
        } else if !self.cp.alive() {
            self.free_deferred();
        }
    }

    /// Frees what torn-down queues still hold, and their rings (the device can no longer write
    /// them: it is dead, gone, or back from a reset without our objects).
    pub(crate) fn free_deferred(&mut self) {
        self.release_deferred(false);
    }

    /// Frees what torn-down queues still hold (the device can no longer write it). Their rings
    /// are freed too, or, with `keep`, kept for the port's next start if it is to start again.
    fn release_deferred(&mut self, keep: bool) {
        for p in 0..self.ports.len() {
            if self.ports[p].running.is_some() {
                continue;
            }
            let (rx, tx) = self.drain_slots(p);
            let c = &self.ports[p].counters;
            c.rx_freed_at_reset.add(rx);
            c.tx_dropped_at_reset.add(tx);
        }
        let deferred: Vec<(usize, Running)> = std::mem::take(&mut self.deferred);
        for (p, run) in deferred {
            let st = &mut self.ports[p];
            if keep && st.admin_started && !st.closed && st.spare.is_none() {
                st.spare = Some(run.arena);
            } else {
                self.drop_arena(run.arena);
            }
        }
    }

    /// Frees the rings kept for the ports' next start (no start is coming).
    fn drop_spares(&mut self) {
        for p in 0..self.ports.len() {
            if let Some(a) = self.ports[p].spare.take() {
                self.drop_arena(a);
            }
        }
    }

    /// Closes a port's gates and waits for its bursts to leave; they stay closed.
    pub(crate) fn close_gates(&mut self, p: usize) {
        let st = &self.ports[p];
        for s in st.rxq.iter().flatten() {
            drop(s.slot.exclusive_logged("mana recovery"));
        }
        for s in st.txq.iter().flatten() {
            drop(s.slot.exclusive_logged("mana recovery"));
        }
    }

    /// Takes every queue out of a port's slots (gates closed) and frees its buffers: (RX
    /// buffers, TX packets) freed.
    pub(crate) fn drain_slots(&mut self, p: usize) -> (u64, u64) {
        let (mut rx, mut tx) = (0u64, 0u64);
        let st = &self.ports[p];
        for s in st.rxq.iter().flatten() {
            if let Some(mut ex) = s.slot.exclusive_logged("mana drain") {
                ex.with(|q| {
                    if let Some(mut q) = q.0.take() {
                        rx += q.drain() as u64;
                    }
                });
            }
        }
        for s in st.txq.iter().flatten() {
            if let Some(mut ex) = s.slot.exclusive_logged("mana drain") {
                ex.with(|q| {
                    if let Some(mut q) = q.0.take() {
                        tx += q.drain() as u64;
                    }
                });
            }
        }
        (rx, tx)
    }

    /// Brings the device up from scratch and restores every port as the application left it.
    fn rebuild(&mut self) -> Result<(), CpError> {
        let delay = self.opts.hooks.rebuild_delay_us.load(Ordering::Relaxed);
        if delay != 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
        let caps = self.cp.bring_up()?;
        let doorbells = self.cp.doorbells()?;
        let mut vports = Vec::new();
        for i in 0..self.ports.len() {
            let v = self.cp.query_vport(i as u32)?;
            if v.mac != self.ports[i].vport.mac {
                return Err(CpError::BadAnswer {
                    cmd: "QUERY_VPORT_CONFIG",
                    why: format!("vport {i} came back with another MAC"),
                });
            }
            vports.push(v);
        }
        self.caps = caps;
        self.doorbells = doorbells;
        for (st, v) in self.ports.iter_mut().zip(vports) {
            st.vport = v;
        }
        // The device is back without our objects: nothing can write the old rings any more.
        self.free_deferred();
        for p in 0..self.ports.len() {
            let st = &self.ports[p];
            if st.admin_started && !st.closed {
                self.bring_port_up(p).map_err(|e| CpError::BadAnswer {
                    cmd: "restart",
                    why: format!("port {p}: {e}"),
                })?;
                // Whatever the device had counted as handled is gone with the old queues.
                let errs: Vec<u64> = self.ports[p]
                    .txq
                    .iter()
                    .map(|s| s.as_ref().map_or(0, |s| s.x.err_gdma.get()))
                    .collect();
                self.ports[p].tx_err_seen = errs;
            }
        }
        Ok(())
    }

    fn finish_success(&mut self, ep: &Episode) {
        self.state.set(DevState::Active);
        let took = ep.started.elapsed();
        let back = ep.back_at.map_or(Duration::ZERO, |b| b.elapsed());
        for p in 0..self.ports.len() {
            if let Some(ctx) = &self.ports[p].ctx {
                ctx.dispatch.set_live();
            }
            let d = format!(
                "recovered after {took:.1?} ({} attempt(s), {back:.1?} after the device was back)",
                ep.attempts
            );
            self.queue_event(p, EventType::RecoverySuccess, None, d);
        }
    }

    fn finish_failed(&mut self, ep: &Episode) {
        self.state.set(DevState::Failed);
        if !self.cp.alive() {
            self.free_deferred();
        }
        self.drop_spares();
        let why = ep.last_error.as_ref().map_or_else(
            || "the device did not come back".to_owned(),
            |e| format!("last attempt: {e}"),
        );
        for p in 0..self.ports.len() {
            let d = format!(
                "gave up after {:.1?} and {} attempt(s): {why}",
                ep.started.elapsed(),
                ep.attempts
            );
            self.queue_event(p, EventType::RecoveryFailed, None, d);
        }
    }

    fn finish_removed(&mut self) {
        self.state.set(DevState::Removed);
        self.free_deferred();
        self.drop_spares();
        for p in 0..self.ports.len() {
            self.queue_event(p, EventType::IntrRmv, None, Cause::Removed.describe().to_owned());
        }
    }

    /// Send queues the device disabled (a CQE_TX_GDMA_ERR): each is recreated alone.
    fn check_queue_errors(&mut self) {
        for p in 0..self.ports.len() {
            if self.ports[p].running.is_none() {
                continue;
            }
            for i in 0..self.ports[p].txq.len() {
                let Some(s) = &self.ports[p].txq[i] else { continue };
                let errs = s.x.err_gdma.get();
                if self.ports[p].tx_err_seen.get(i).copied().unwrap_or(errs) == errs {
                    continue;
                }
                self.ports[p].tx_err_seen[i] = errs;
                if let Err(e) = self.recover_txq(p, i) {
                    // The queue could not be recreated alone: recover the whole device.
                    let why = format!("recreating send queue {i} of port {p}: {e}");
                    self.queue_event(p, EventType::QueueError, Some(i as u16), why);
                    self.detect(Cause::Fatal);
                    return;
                }
            }
        }
    }

    /// Destroys and recreates one send queue on the same rings; its unfinished packets are
    /// freed and counted. The ring positions start afresh, deliberately: nothing is left posted
    /// on the old queue (every packet on it was freed and counted), so none is lost unseen or
    /// sent twice.
    fn recover_txq(&mut self, p: usize, i: usize) -> Result<(), CpError> {
        let Some(s) = self.ports[p].txq[i].as_ref() else { return Ok(()) };
        let (slot, nb, stats, x) = (s.slot.clone(), s.nb_desc, s.stats.clone(), s.x.clone());
        let k = self.ports[p].txq[..i].iter().flatten().count();
        let Some(run) = self.ports[p].running.as_ref() else { return Ok(()) };
        let (obj, mem_key) = match run.tx_objs.get(k) {
            Some(o) => (*o, run.mem_key),
            None => return Ok(()),
        };
        let tx_cfg = self.ports[p].tx_cfg.ok_or(CpError::NotUp)?;
        let vport = self.ports[p].vport.handle;
        // Waits for the queue's burst in flight; the gate stays closed until the new queue is in.
        let mut ex = slot.exclusive_logged("mana send-queue recovery").ok_or(CpError::NotUp)?;
        let Some(mut old) = ex.with(|s| s.0.take()) else { return Ok(()) };
        if let Err(e) = self.cp.destroy_wq(&obj) {
            // Keep the queue where it was (closed): the device recovery frees it.
            ex.with(|s| s.0 = Some(old));
            return Err(e);
        }
        old.reap();
        let dropped = old.drain() as u64;
        let (sq, cq) = old.rings();
        drop(old);
        // Fresh rings: no stale WQE, and no old CQE whose owner bits could pass for new.
        sq.win.fill(0, sq.size() as usize, 0);
        cq.win.fill(0, cq.size() as usize, 0);
        let new =
            self.cp.create_wq(&WqSpec { vport, kind: WqKind::Sq, wq: sq.desc, cq: cq.desc })?;
        let q = self.make_txq(&new, tx_cfg, mem_key, (sq, cq), nb, stats, x)?;
        if let Some(run) = self.ports[p].running.as_mut() {
            run.tx_objs[k] = new;
        }
        ex.with(|s| s.0 = Some(q));
        if self.ports[p].admin_started {
            ex.open();
        }
        let c = &self.ports[p].counters;
        c.sq_recreated.inc();
        c.tx_dropped_at_sq_error.add(dropped);
        let d = format!(
            "send queue {i} disabled by the device: recreated, {dropped} packet(s) dropped"
        );
        self.queue_event(p, EventType::QueueError, Some(i as u16), d);
        Ok(())
    }
}
