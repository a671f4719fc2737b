//! The per-PDU scheduler: one task owns the queue of requests and runs driver attempts one at a
//! time (a PDU takes one session), first come first served. A request holds its outlet from its
//! first attempt to its answer, so a reboot's off → delay → on is atomic for that outlet while
//! requests for other outlets use the PDU during the delay and during retry pauses. Every request
//! is answered by its deadline.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::{Common, Loaded};
use crate::driver::{DriverError, OutletState, PowerDriver};
use crate::wire::{Action, ActionResult};

/// How a request ended, beyond its [`ActionResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Done,
    /// The PDU failed every attempt.
    Failed,
    /// The deadline passed first.
    Deadline,
}

/// What the caller of [`Pdu::read`] gets.
#[derive(Debug, Clone)]
pub enum ReadOutcome {
    Read(OutletState),
    Failed { error: String, ending: Ending },
}

/// The handle on one PDU's scheduler; cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Pdu {
    tx: mpsc::UnboundedSender<Job>,
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    common: Common,
    driver: Arc<dyn PowerDriver>,
    queued: AtomicUsize,
    remembered: Mutex<HashMap<String, OutletState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Set(OutletState),
    Reboot,
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Set(OutletState),
    RebootOff,
    RebootOn,
    Read,
}

struct Job {
    kind: Kind,
    outlet: String,
    delay: Duration,
    client: String,
    reply: oneshot::Sender<Reply>,
}

struct Reply {
    ending: Ending,
    attempts: u32,
    duration: Duration,
    state: Option<OutletState>,
    error: Option<String>,
}

impl Pdu {
    /// Starts the scheduler of a loaded PDU on the current tokio runtime.
    pub fn start(name: &str, loaded: Loaded) -> Pdu {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            common: loaded.common,
            driver: loaded.driver,
            queued: AtomicUsize::new(0),
            remembered: Mutex::new(HashMap::new()),
        });
        tokio::spawn(Scheduler::new(inner.clone(), rx).run());
        Pdu { tx, inner }
    }

    /// The PDU's name (its config file's stem).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The shared config keys.
    pub fn common(&self) -> &Common {
        &self.inner.common
    }

    /// The driver's kind (`command`, `snmp`, …).
    pub fn driver_kind(&self) -> &'static str {
        self.inner.driver.kind()
    }

    /// Whether the driver can read outlet state.
    pub fn can_read(&self) -> bool {
        self.inner.driver.can_read()
    }

    /// Requests waiting or running.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// The last state this service set on an outlet.
    pub fn remembered(&self, outlet: &str) -> Option<OutletState> {
        self.inner
            .remembered
            .lock()
            .ok()
            .and_then(|m| m.get(outlet).copied())
    }

    /// Every outlet with a remembered state.
    pub fn remembered_outlets(&self) -> Vec<String> {
        self.inner
            .remembered
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Runs a power request (outlet already resolved) and waits for its result. `delay` is a
    /// reboot's off → on pause (default the PDU's `reboot_delay`).
    pub async fn action(
        &self,
        outlet: &str,
        action: Action,
        delay: Option<Duration>,
        client: &str,
    ) -> (ActionResult, Ending) {
        let kind = match action {
            Action::On => Kind::Set(OutletState::On),
            Action::Off => Kind::Set(OutletState::Off),
            Action::Reboot => Kind::Reboot,
        };
        let delay = delay.unwrap_or(self.inner.common.reboot_delay);
        let reply = self.submit(kind, outlet, delay, client).await;
        let result = ActionResult {
            ok: reply.ending == Ending::Done,
            pdu: self.inner.name.clone(),
            outlet: outlet.to_owned(),
            action,
            attempts: reply.attempts,
            duration_ms: u64::try_from(reply.duration.as_millis()).unwrap_or(u64::MAX),
            error: reply.error,
        };
        (result, reply.ending)
    }

    /// Reads an outlet's state through the queue (the PDU is asked, in turn).
    pub async fn read(&self, outlet: &str, client: &str) -> ReadOutcome {
        let reply = self
            .submit(Kind::Read, outlet, Duration::ZERO, client)
            .await;
        match (reply.ending, reply.state) {
            (Ending::Done, Some(s)) => ReadOutcome::Read(s),
            (ending, _) => ReadOutcome::Failed {
                error: reply.error.unwrap_or_else(|| "no state read".into()),
                ending,
            },
        }
    }

    async fn submit(&self, kind: Kind, outlet: &str, delay: Duration, client: &str) -> Reply {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            kind,
            outlet: outlet.to_owned(),
            delay,
            client: client.to_owned(),
            reply,
        };
        self.inner.queued.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.send(job);
        let answer = match sent {
            Ok(()) => rx.await.ok(),
            Err(_) => None,
        };
        self.inner.queued.fetch_sub(1, Ordering::Relaxed);
        answer.unwrap_or(Reply {
            ending: Ending::Failed,
            attempts: 0,
            duration: Duration::ZERO,
            state: None,
            error: Some("lava-power is shutting down".into()),
        })
    }
}

type Attempt = Pin<Box<dyn Future<Output = Result<Option<OutletState>, DriverError>> + Send>>;

/// A request in the scheduler.
struct Task {
    seq: u64,
    job: Job,
    step: Step,
    started: Instant,
    deadline: Instant,
    /// When the next attempt may run (after a retry pause or a reboot's delay).
    ready_at: Instant,
    /// Whether it holds its outlet (it has begun).
    holding: bool,
    step_attempts: u32,
    attempts: u32,
}

struct Scheduler {
    inner: Arc<Inner>,
    rx: mpsc::UnboundedReceiver<Job>,
    tasks: VecDeque<Task>,
    next_seq: u64,
    /// The attempt using the PDU now, and whose it is.
    running: Option<(u64, Attempt)>,
}

impl Scheduler {
    fn new(inner: Arc<Inner>, rx: mpsc::UnboundedReceiver<Job>) -> Scheduler {
        Scheduler {
            inner,
            rx,
            tasks: VecDeque::new(),
            next_seq: 0,
            running: None,
        }
    }

    async fn run(mut self) {
        let mut open = true;
        loop {
            let now = Instant::now();
            self.expire(now);
            if self.running.is_none() {
                self.start_next(now);
            }
            if !open && self.tasks.is_empty() {
                return;
            }
            let wake = self.next_wake(now);
            let running = self.running.as_mut().map(|(seq, fut)| (*seq, fut));
            tokio::select! {
                job = self.rx.recv(), if open => match job {
                    Some(job) => self.push(job),
                    None => open = false,
                },
                (seq, result) = async {
                    match running {
                        Some((seq, fut)) => (seq, fut.await),
                        None => std::future::pending().await,
                    }
                } => {
                    self.running = None;
                    self.finish_attempt(seq, result);
                }
                _ = async {
                    match wake {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }

    fn push(&mut self, job: Job) {
        let now = Instant::now();
        let c = &self.inner.common;
        // A longer delay than configured extends the deadline by the difference.
        let extra = match job.kind {
            Kind::Reboot => job.delay.saturating_sub(c.reboot_delay),
            _ => Duration::ZERO,
        };
        let step = match job.kind {
            Kind::Set(s) => Step::Set(s),
            Kind::Reboot => Step::RebootOff,
            Kind::Read => Step::Read,
        };
        self.tasks.push_back(Task {
            seq: self.next_seq,
            job,
            step,
            started: now,
            deadline: now + c.deadline + extra,
            ready_at: now,
            holding: false,
            step_attempts: 0,
            attempts: 0,
        });
        self.next_seq += 1;
    }

    fn running_seq(&self) -> Option<u64> {
        self.running.as_ref().map(|(s, _)| *s)
    }

    fn held(&self, outlet: &str) -> bool {
        self.tasks
            .iter()
            .any(|t| t.holding && t.job.outlet == outlet)
    }

    /// Whether a task may run its next attempt now.
    fn eligible(&self, t: &Task, now: Instant) -> bool {
        t.ready_at <= now && (t.holding || !self.held(&t.job.outlet))
    }

    /// Answers every task whose deadline has passed (except the one running, whose attempt is
    /// already bounded by its deadline).
    fn expire(&mut self, now: Instant) {
        let running = self.running_seq();
        let expired: Vec<u64> = self
            .tasks
            .iter()
            .filter(|t| t.deadline <= now && Some(t.seq) != running)
            .map(|t| t.seq)
            .collect();
        for seq in expired {
            if let Some(t) = self.tasks.iter().find(|t| t.seq == seq) {
                let why = match t.step {
                    Step::RebootOn => format!(
                        "deadline of {:?} passed during the reboot; outlet {} left off",
                        t.deadline - t.started,
                        t.job.outlet
                    ),
                    _ if t.attempts == 0 => format!(
                        "deadline of {:?} passed while waiting for the PDU ({} requests ahead)",
                        t.deadline - t.started,
                        self.tasks.iter().filter(|o| o.seq < seq).count()
                    ),
                    _ => format!(
                        "deadline of {:?} passed between attempts",
                        t.deadline - t.started
                    ),
                };
                self.complete(seq, Ending::Deadline, None, Some(why));
            }
        }
    }

    fn start_next(&mut self, now: Instant) {
        let Some(idx) = self.tasks.iter().position(|t| self.eligible(t, now)) else {
            return;
        };
        let Some(t) = self.tasks.get_mut(idx) else {
            return;
        };
        t.holding = true;
        t.attempts += 1;
        t.step_attempts += 1;
        let c = &self.inner.common;
        let limit = c.timeout.min(t.deadline.saturating_duration_since(now));
        let driver = self.inner.driver.clone();
        let outlet = t.job.outlet.clone();
        let step = t.step;
        tracing::debug!(pdu = %self.inner.name, outlet = %outlet, step = ?step, attempt = t.step_attempts, "attempt");
        let fut: Attempt = Box::pin(async move {
            let work = async {
                match step {
                    Step::Set(s) => driver.set(&outlet, s).await.map(|()| None),
                    Step::RebootOff => driver.set(&outlet, OutletState::Off).await.map(|()| None),
                    Step::RebootOn => driver.set(&outlet, OutletState::On).await.map(|()| None),
                    Step::Read => driver.get(&outlet).await.map(Some),
                }
            };
            match tokio::time::timeout(limit, work).await {
                Ok(r) => r,
                Err(_) => Err(DriverError::Timeout(limit)),
            }
        });
        self.running = Some((t.seq, fut));
    }

    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let running = self.running_seq();
        let mut wake: Option<Instant> = None;
        let mut consider = |at: Instant| {
            wake = Some(wake.map_or(at, |w: Instant| w.min(at)));
        };
        for t in &self.tasks {
            if Some(t.seq) == running {
                continue;
            }
            consider(t.deadline);
            if t.ready_at > now && (t.holding || !self.held(&t.job.outlet)) {
                consider(t.ready_at);
            }
        }
        wake
    }

    fn remember(&self, outlet: &str, state: OutletState) {
        if let Ok(mut m) = self.inner.remembered.lock() {
            m.insert(outlet.to_owned(), state);
        }
    }

    fn finish_attempt(&mut self, seq: u64, result: Result<Option<OutletState>, DriverError>) {
        let now = Instant::now();
        let c = self.inner.common.clone();
        let Some(t) = self.tasks.iter_mut().find(|t| t.seq == seq) else {
            return;
        };
        match result {
            Ok(state) => match t.step {
                Step::Set(s) => {
                    let outlet = t.job.outlet.clone();
                    self.remember(&outlet, s);
                    self.complete(seq, Ending::Done, None, None);
                }
                Step::RebootOff => {
                    t.step = Step::RebootOn;
                    t.step_attempts = 0;
                    t.ready_at = now + t.job.delay;
                    let outlet = t.job.outlet.clone();
                    self.remember(&outlet, OutletState::Off);
                }
                Step::RebootOn => {
                    let outlet = t.job.outlet.clone();
                    self.remember(&outlet, OutletState::On);
                    self.complete(seq, Ending::Done, None, None);
                }
                Step::Read => self.complete(seq, Ending::Done, state, None),
            },
            Err(e) => {
                let retry_at = now + c.retry_delay;
                let left = t.step_attempts <= c.retries;
                tracing::debug!(pdu = %self.inner.name, outlet = %t.job.outlet, error = %e, "attempt failed");
                if e.is_retryable() && left && retry_at < t.deadline {
                    t.ready_at = retry_at;
                    return;
                }
                let past_deadline = now >= t.deadline || (left && e.is_retryable());
                let mut why = e.to_string();
                if t.step == Step::RebootOn {
                    why = format!("turning the outlet back on failed: {why} (outlet left off)");
                } else if t.step == Step::RebootOff {
                    why = format!("turning the outlet off failed: {why}");
                }
                if t.attempts > 1 {
                    why = format!("{why} (after {} attempts)", t.attempts);
                }
                let ending = if past_deadline {
                    why = format!("{why}; deadline of {:?} reached", t.deadline - t.started);
                    Ending::Deadline
                } else {
                    Ending::Failed
                };
                self.complete(seq, ending, None, Some(why));
            }
        }
    }

    fn complete(
        &mut self,
        seq: u64,
        ending: Ending,
        state: Option<OutletState>,
        error: Option<String>,
    ) {
        let Some(idx) = self.tasks.iter().position(|t| t.seq == seq) else {
            return;
        };
        let Some(t) = self.tasks.remove(idx) else {
            return;
        };
        let duration = t.started.elapsed();
        let action = match t.job.kind {
            Kind::Set(OutletState::On) => "on",
            Kind::Set(OutletState::Off) => "off",
            Kind::Reboot => "reboot",
            Kind::Read => "status",
        };
        let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        match &error {
            None => tracing::info!(
                pdu = %self.inner.name, client = %t.job.client, outlet = %t.job.outlet,
                action, attempts = t.attempts, duration_ms, "done"
            ),
            Some(e) => tracing::warn!(
                pdu = %self.inner.name, client = %t.job.client, outlet = %t.job.outlet,
                action, attempts = t.attempts, duration_ms, error = %e, "failed"
            ),
        }
        let _ = t.job.reply.send(Reply {
            ending,
            attempts: t.attempts,
            duration,
            state,
            error,
        });
    }
}
