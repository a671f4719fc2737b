//! The per-PDU queue under tokio's paused time: one attempt at a time, FIFO, reboots atomic for
//! their outlet while other outlets use the PDU during the delay, retries, deadlines. The PDU is an
//! in-process driver that records when each switch happened and fails if two ever overlap.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lava_common::Source;
use lava_power::config::Loaded;
use lava_power::driver::{DriverError, DriverFuture, OutletState, PowerDriver};
use lava_power::queue::{Ending, Pdu};
use lava_power::wire::Action;
use tokio::time::Instant;

/// A relay board that takes `switch_time` per switch and records `(ms since start, outlet, state)`.
struct Relay {
    t0: Instant,
    switch_time: Duration,
    busy: AtomicBool,
    events: Mutex<Vec<(u64, String, OutletState)>>,
    /// Scripted answers, used before normal switching.
    script: Mutex<VecDeque<Scripted>>,
}

impl Relay {
    fn new(switch_time: Duration) -> Arc<Relay> {
        Arc::new(Relay {
            t0: Instant::now(),
            switch_time,
            busy: AtomicBool::new(false),
            events: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
        })
    }

    fn events(&self) -> Vec<(u64, String, OutletState)> {
        self.events.lock().expect("lock").clone()
    }
}

enum Scripted {
    Fail(DriverError),
    Hang,
}

struct RelayDriver(Arc<Relay>);

struct Busy<'a>(&'a AtomicBool);
impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl PowerDriver for RelayDriver {
    fn kind(&self) -> &'static str {
        "relay"
    }
    fn set(&self, outlet: &str, state: OutletState) -> DriverFuture<'_, ()> {
        let outlet = outlet.to_owned();
        let relay = &self.0;
        Box::pin(async move {
            assert!(
                !relay.busy.swap(true, Ordering::SeqCst),
                "two attempts used the PDU at once"
            );
            let _busy = Busy(&relay.busy);
            let scripted = relay.script.lock().expect("lock").pop_front();
            match scripted {
                Some(Scripted::Hang) => std::future::pending::<()>().await,
                Some(Scripted::Fail(e)) => return Err(e),
                None => {}
            }
            tokio::time::sleep(relay.switch_time).await;
            let at = relay.t0.elapsed().as_millis() as u64;
            relay.events.lock().expect("lock").push((at, outlet, state));
            Ok(())
        })
    }
    fn get(&self, _outlet: &str) -> DriverFuture<'_, OutletState> {
        Box::pin(async { Err(DriverError::CannotRead) })
    }
    fn can_read(&self) -> bool {
        false
    }
}

fn pdu(relay: &Arc<Relay>, extra: &str) -> Pdu {
    let src = Source::from_text("relay.toml", format!("driver = \"relay\"\n{extra}\n"));
    lava_power::pdu_keys! { struct Raw {} }
    let raw: Raw = src.parse().expect("parse");
    let common = raw.common(&src).expect("common");
    Pdu::start(
        "relay",
        Loaded {
            common,
            driver: Arc::new(RelayDriver(relay.clone())),
        },
    )
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[tokio::test(start_paused = true)]
async fn one_pdu_runs_requests_one_at_a_time_in_order() {
    let relay = Relay::new(Duration::from_secs(1));
    let p = pdu(&relay, "");
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for i in 1..=10 {
        let p = p.clone();
        handles.push(tokio::spawn(async move {
            p.action(&i.to_string(), Action::On, None, "t").await
        }));
        tokio::task::yield_now().await;
    }
    for h in handles {
        let (r, ending) = h.await.expect("join");
        assert!(r.ok, "{r:?}");
        assert_eq!(ending, Ending::Done);
    }
    assert_eq!(ms(t0.elapsed()), 10_000);
    let outlets: Vec<String> = relay.events().into_iter().map(|e| e.1).collect();
    let expected: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    assert_eq!(outlets, expected, "first come, first served");
}

#[tokio::test(start_paused = true)]
async fn another_pdu_is_not_held_up() {
    let slow = Relay::new(Duration::from_secs(5));
    let fast = Relay::new(Duration::from_millis(100));
    let a = pdu(&slow, "");
    let b = pdu(&fast, "");
    for i in 1..=4 {
        let a = a.clone();
        tokio::spawn(async move { a.action(&i.to_string(), Action::Off, None, "t").await });
    }
    tokio::task::yield_now().await;
    let t0 = Instant::now();
    let (r, _) = b.action("1", Action::On, None, "t").await;
    assert!(r.ok);
    assert_eq!(ms(t0.elapsed()), 100);
}

#[tokio::test(start_paused = true)]
async fn reboot_is_atomic_for_its_outlet_but_lends_the_pdu_to_others() {
    let relay = Relay::new(Duration::from_millis(100));
    let p = pdu(&relay, "reboot_delay = \"5s\"");
    let reboot = {
        let p = p.clone();
        tokio::spawn(async move { p.action("1", Action::Reboot, None, "t").await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let same = {
        let p = p.clone();
        tokio::spawn(async move { p.action("1", Action::Off, None, "t").await })
    };
    let other = {
        let p = p.clone();
        tokio::spawn(async move { p.action("2", Action::On, None, "t").await })
    };
    let (other, _) = other.await.expect("join");
    let (reboot, _) = reboot.await.expect("join");
    let (same, _) = same.await.expect("join");
    assert!(other.ok && reboot.ok && same.ok);
    assert_eq!(reboot.attempts, 2);
    let ev = relay.events();
    let order: Vec<(String, OutletState)> = ev.iter().map(|e| (e.1.clone(), e.2)).collect();
    assert_eq!(
        order,
        vec![
            ("1".into(), OutletState::Off),
            ("2".into(), OutletState::On),
            ("1".into(), OutletState::On),
            ("1".into(), OutletState::Off),
        ],
        "{ev:?}"
    );
    // the other outlet ran during the delay, not after it
    assert_eq!(ev[1].0, 1_100);
    assert_eq!(ev[2].0, 5_200);
    assert_eq!(ev[3].0, 5_300);
}

#[tokio::test(start_paused = true)]
async fn sixteen_reboots_share_one_delay() {
    let relay = Relay::new(Duration::from_millis(100));
    let p = pdu(&relay, "reboot_delay = \"5s\"");
    let t0 = Instant::now();
    let mut hs = Vec::new();
    for i in 1..=16 {
        let p = p.clone();
        hs.push(tokio::spawn(async move {
            p.action(&i.to_string(), Action::Reboot, None, "t").await
        }));
    }
    for h in hs {
        assert!(h.await.expect("join").0.ok);
    }
    // 16 offs, then the delay, then 16 ons: not 16 × 5 s.
    assert!(t0.elapsed() < Duration::from_secs(9), "{:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_are_retried_after_retry_delay() {
    let relay = Relay::new(Duration::from_millis(100));
    {
        let mut s = relay.script.lock().expect("lock");
        s.push_back(Scripted::Fail(DriverError::Unreachable("no route".into())));
        s.push_back(Scripted::Fail(DriverError::Refused("busy".into())));
    }
    let p = pdu(&relay, "retries = 3\nretry_delay = \"2s\"");
    let t0 = Instant::now();
    let (r, ending) = p.action("4", Action::On, None, "t").await;
    assert!(r.ok, "{r:?}");
    assert_eq!(ending, Ending::Done);
    assert_eq!(r.attempts, 3);
    assert_eq!(ms(t0.elapsed()), 4_100);
}

#[tokio::test(start_paused = true)]
async fn a_pdu_that_never_answers_fails_by_the_deadline_and_the_queue_goes_on() {
    let relay = Relay::new(Duration::from_millis(100));
    {
        let mut s = relay.script.lock().expect("lock");
        for _ in 0..10 {
            s.push_back(Scripted::Hang);
        }
    }
    let p = pdu(
        &relay,
        "timeout = \"10s\"\nretries = 5\nretry_delay = \"1s\"",
    );
    let t0 = Instant::now();
    let stuck = {
        let p = p.clone();
        tokio::spawn(async move { p.action("1", Action::On, None, "t").await })
    };
    let (r, ending) = stuck.await.expect("join");
    assert!(!r.ok);
    assert_eq!(ending, Ending::Deadline);
    assert!(
        t0.elapsed() <= Duration::from_secs(25),
        "{:?}",
        t0.elapsed()
    );
    let why = r.error.expect("a reason");
    assert!(why.contains("did not answer within"), "{why}");
    assert!(why.contains("deadline"), "{why}");
    // The remaining scripted hangs are consumed by later attempts; clear them and check service.
    relay.script.lock().expect("lock").clear();
    let (r, _) = p.action("2", Action::Off, None, "t").await;
    assert!(r.ok, "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_behind_a_slow_pdu_is_answered_by_its_deadline() {
    let relay = Relay::new(Duration::from_secs(20));
    let p = pdu(&relay, "timeout = \"30s\"\ndeadline = \"25s\"");
    let first = {
        let p = p.clone();
        tokio::spawn(async move { p.action("1", Action::On, None, "t").await })
    };
    tokio::task::yield_now().await;
    let t0 = Instant::now();
    let (second, ending) = p.action("2", Action::On, None, "t").await;
    assert!(!second.ok);
    assert_eq!(ending, Ending::Deadline);
    assert_eq!(ms(t0.elapsed()), 25_000);
    assert!(first.await.expect("join").0.ok);
}

#[tokio::test(start_paused = true)]
async fn remembered_state_follows_successful_switches() {
    let relay = Relay::new(Duration::from_millis(10));
    let p = pdu(&relay, "");
    assert_eq!(p.remembered("3"), None);
    p.action("3", Action::Off, None, "t").await;
    assert_eq!(p.remembered("3"), Some(OutletState::Off));
    p.action("3", Action::Reboot, Some(Duration::from_secs(1)), "t")
        .await;
    assert_eq!(p.remembered("3"), Some(OutletState::On));
}
