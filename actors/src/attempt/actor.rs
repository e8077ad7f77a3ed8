//! The `attempt` actor's implementation (see the module docs for its
//! messages).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::AbortHandle;

use super::artifacts::{self, ScanInput};
use super::{AttemptArgs, AttemptMsg, AttemptStatus, DeadlineKind};
use crate::host::env::{build_env, OrcaContext};
use crate::host::process::{pump, Pumped};
use crate::host::{ExitInfo, HostPaths, Launch, OutputStream, ProcHandle, RecordedProc, Sig};
use crate::journal::event::{BudgetLimit, Event, LogStream, WorkerEvent};
use crate::journal::NewEvent;
use crate::model::{bounded, Timestamp};
use crate::outcome::{
    judge, AttemptOutcome, Evidence, Judgement, ReceiptDraft, StopCause, SUMMARY_MAX,
};
use crate::path::ActorPath;
use crate::persist::Persister;
use crate::redact::Secrets;
use crate::runtime::budget::{attempt_breach, BudgetBreach};
use crate::runtime::launch::{agent_launch, LaunchInput};
use crate::runtime::{resolve, Parser, Preset, StreamFormat, StreamParser, UsageRecord};
use crate::spec::template::build_prompt;
use crate::spec::{paths, Scorer};
use crate::stream_json::{Change, Signal, StreamState, MAX_PARSED_LINE};

/// The `attempt` actor.
#[derive(Debug, Default)]
pub struct AttemptActor;

/// The actor's state.
pub struct AttemptState {
    a: AttemptArgs,
    path: ActorPath,
    attempt_dir: PathBuf,
    attempt_dir_rel: PathBuf,
    paths: Option<HostPaths>,
    /// The task runs an agent runtime (a preset or the `[runtime]`
    /// template), not its own `command`.
    runtime: bool,
    /// The preset that runs, if one does (its exit codes).
    preset: Option<Preset>,
    /// The model priced when the stream names none.
    model: Option<String>,
    /// Secret values, redacted from logs and anything journaled.
    secrets: Secrets,
    started: Timestamp,
    started_sys: SystemTime,
    proc: Option<ProcHandle>,
    stream: StreamState,
    stop: Option<StopCause>,
    exit: Option<ExitInfo>,
    open_outputs: u8,
    /// Which logs the readers wrote (stdout, stderr).
    logged: [bool; 2],
    /// The process group was found empty when the process exited.
    group_gone: bool,
    last_output: Arc<AtomicI64>,
    timers: Vec<AbortHandle>,
    kill_timer: Option<AbortHandle>,
    abandon: tokio::sync::watch::Sender<bool>,
    finished: bool,
    notes: Vec<String>,
    /// The host lost the process (transport), if it did.
    lost: Option<String>,
    /// What the host enforces for the attempt (and its verifier).
    confine: crate::host::sandbox::Confine,
    /// Whether its trust level lets it (and its verifier) have secrets.
    secrets_allowed: bool,
    persister: Persister<()>,
}

impl Actor for AttemptActor {
    type Msg = AttemptMsg;
    type State = AttemptState;
    type Arguments = AttemptArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AttemptMsg>,
        a: AttemptArgs,
    ) -> Result<AttemptState, ActorProcessingErr> {
        let path = ActorPath::Attempt(a.attempt.clone());
        a.services
            .registry
            .register(path.clone(), myself.get_cell());
        let attempt_dir =
            a.services
                .ws
                .attempt_dir(&a.attempt.run, &a.attempt.task, a.attempt.attempt);
        let attempt_dir_rel = attempt_dir
            .strip_prefix(a.services.ws.root())
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| attempt_dir.clone());
        let runtime = resolve(&a.task, a.services.settings.runtime.as_ref()).is_agent_runtime();
        let now = Timestamp::now();
        let me = myself.clone();
        // Queued appends (start, worker reports) are not waited for: a
        // failure comes back as JournalFailed, which kills the group.
        let persister = Persister::new(a.services.journal.clone(), move |r, ()| {
            if let Err(e) = r {
                let _ = me.cast(AttemptMsg::JournalFailed(e.to_string()));
            }
        });
        myself.cast(AttemptMsg::Start)?;
        Ok(AttemptState {
            persister,
            path,
            attempt_dir,
            attempt_dir_rel,
            paths: None,
            runtime,
            preset: None,
            model: None,
            secrets: Secrets::default(),
            started: now,
            started_sys: SystemTime::now(),
            proc: None,
            stream: StreamState::default(),
            stop: None,
            exit: None,
            open_outputs: 0,
            logged: [false; 2],
            group_gone: false,
            last_output: Arc::new(AtomicI64::new(now.nanos())),
            timers: Vec::new(),
            kill_timer: None,
            abandon: tokio::sync::watch::channel(false).0,
            finished: false,
            notes: Vec::new(),
            lost: None,
            confine: Default::default(),
            secrets_allowed: true,
            a,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AttemptMsg>,
        msg: AttemptMsg,
        st: &mut AttemptState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AttemptMsg::Start => match launch(&myself, st).await {
                Ok(()) => Ok(()),
                Err(Launched::NotStarted(j)) => finish_without_process(&myself, st, j).await,
                Err(Launched::Fatal(e)) => Err(e),
            },
            AttemptMsg::Signals(signals) => on_signals(&myself, st, signals).await,
            AttemptMsg::LogCapped(stream) => {
                queue(
                    st,
                    vec![Event::WorkerReported {
                        attempt: st.a.attempt.clone(),
                        event: WorkerEvent::LogCapped { stream },
                    }],
                );
                Ok(())
            }
            AttemptMsg::JournalFailed(reason) => {
                if let Some(proc) = st.proc {
                    let _ = st.a.host.signal(&proc, Sig::Kill).await;
                }
                Err(format!("journal append failed: {reason}").into())
            }
            AttemptMsg::OutputClosed(which, logged) => {
                st.open_outputs = st.open_outputs.saturating_sub(1);
                let i = match which {
                    LogStream::Stdout => 0,
                    LogStream::Stderr => 1,
                };
                st.logged[i] |= logged;
                maybe_finish(&myself, st).await
            }
            AttemptMsg::Exited(result) => {
                let info = match result {
                    Ok(info) => info,
                    Err(e) => {
                        // The host lost the process (a dropped connection):
                        // a transport failure, retried per policy. The host
                        // kills what is left before the next attempt starts.
                        if st.stop.is_none() {
                            st.lost = Some(e.clone());
                        }
                        st.notes.push(format!("lost the process: {e}"));
                        ExitInfo {
                            code: None,
                            signal: None,
                        }
                    }
                };
                st.exit = Some(info);
                if let Some(proc) = st.proc {
                    // Leftover members of the group (a grandchild holding
                    // the pipes, a daemonized helper) go with it.
                    let alive = st.a.host.alive(&proc).await;
                    st.group_gone = matches!(alive, Ok(false));
                    if alive.unwrap_or(false) && st.kill_timer.is_none() {
                        st.notes
                            .push("processes were left in the group after exit; stopped".into());
                        stop_group(&myself, st).await;
                    }
                }
                if st.open_outputs > 0 {
                    let after = st.a.services.settings.grace + Duration::from_secs(2);
                    let h = myself.send_after(after, || AttemptMsg::AbandonOutput);
                    st.timers.push(h.abort_handle());
                }
                maybe_finish(&myself, st).await
            }
            AttemptMsg::StaleCheck => on_stale_check(&myself, st).await,
            AttemptMsg::Deadline(kind) => {
                let cause = match kind {
                    DeadlineKind::Timeout => StopCause::Timeout {
                        after_ms: st
                            .a
                            .task
                            .timeout_seconds
                            .map(|s| s.as_millis())
                            .unwrap_or(0),
                    },
                    DeadlineKind::BudgetSeconds => {
                        journal(
                            st,
                            vec![Event::WorkerReported {
                                attempt: st.a.attempt.clone(),
                                event: WorkerEvent::BudgetExceeded {
                                    limit: BudgetLimit::Seconds,
                                },
                            }],
                        )
                        .await?;
                        StopCause::Budget(BudgetLimit::Seconds)
                    }
                };
                request_stop(&myself, st, cause).await;
                Ok(())
            }
            AttemptMsg::KillGroup => {
                if let Some(proc) = st.proc {
                    let _ = st.a.host.signal(&proc, Sig::Kill).await;
                }
                Ok(())
            }
            AttemptMsg::AbandonOutput => {
                if st.open_outputs > 0 && !st.finished {
                    if let Some(proc) = st.proc {
                        // Whatever still carries the attempt's id holds the
                        // pipes: it escaped the group.
                        let rec = RecordedProc {
                            proc,
                            attempt_id: st.a.attempt.to_string(),
                        };
                        let _ = st.a.host.kill_orphan(&rec, 1_000).await;
                    }
                    st.notes.push(
                        "output was still open after the process group ended; stopped reading"
                            .into(),
                    );
                    let _ = st.abandon.send(true);
                }
                Ok(())
            }
            AttemptMsg::Stop(cause) => {
                request_stop(&myself, st, cause).await;
                Ok(())
            }
            AttemptMsg::Kill(reply) => {
                let r = kill_now(st).await;
                let _ = reply.send(r);
                Ok(())
            }
            AttemptMsg::Status(reply) => {
                let _ = reply.send(AttemptStatus {
                    attempt: st.a.attempt.clone(),
                    worker: st.a.worker.clone(),
                    proc: st.proc,
                    started: st.started,
                    last_output: Timestamp(st.last_output.load(Ordering::Relaxed)),
                    tokens: st.stream.tokens,
                    tool_calls: st.stream.tool_calls,
                    stopping: st.stop.clone(),
                });
                Ok(())
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<AttemptMsg>,
        st: &mut AttemptState,
    ) -> Result<(), ActorProcessingErr> {
        for t in st.timers.drain(..) {
            t.abort();
        }
        if let Some(t) = st.kill_timer.take() {
            t.abort();
        }
        let _ = st.abandon.send(true);
        // Stopped before it finished (its supervisor gave up on it): leave
        // nothing running.
        if !st.finished {
            if let Some(proc) = st.proc {
                let _ = st.a.host.signal(&proc, Sig::Kill).await;
            }
        }
        st.a.services.registry.unregister(&st.path);
        if let Some(tokens) = &st.a.services.tokens {
            tokens.revoke(&st.a.attempt);
        }
        Ok(())
    }
}

enum Launched {
    /// The attempt ends before any process started (source task).
    NotStarted(Judgement),
    /// orca itself failed (the journal): the actor fails.
    Fatal(ActorProcessingErr),
}

impl From<crate::journal::JournalError> for Launched {
    fn from(e: crate::journal::JournalError) -> Self {
        Launched::Fatal(Box::new(e))
    }
}

async fn launch(myself: &ActorRef<AttemptMsg>, st: &mut AttemptState) -> Result<(), Launched> {
    let a = st.a.clone();
    let task = &a.task;
    let task_root_rel = paths::task_dir_relative(task.workspace_root())
        .map_err(|e| Launched::NotStarted(Judgement::task_fail(e.to_string())))?;
    let hp = a.host.paths(&task_root_rel, &st.attempt_dir_rel);
    st.paths = Some(hp.clone());

    // Local state for the attempt: its directory and logs.
    std::fs::create_dir_all(&st.attempt_dir).map_err(|e| {
        Launched::Fatal(format!("cannot create {}: {e}", st.attempt_dir.display()).into())
    })?;

    let missing = a
        .host
        .missing_files(&hp, task.required_files())
        .await
        .map_err(|e| host_judgement(e, &a.worker))?;
    if !missing.is_empty() {
        return Err(Launched::NotStarted(Judgement::task_fail(format!(
            "required file{} missing: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ))));
    }

    // Trust, security_policy and writable_paths, against what this host
    // can enforce (docs/security.md): under `strict` a restriction it
    // cannot enforce stops the attempt here.
    let (policy, plan) =
        crate::policy::for_attempt(&a.spec, task, &a.worker, &a.host.name(), a.host.caps())
            .map_err(|e| Launched::NotStarted(Judgement::task_fail(e.to_string())))?;
    st.notes.extend(plan.unenforced.iter().cloned());
    st.confine = plan.confine();
    st.secrets_allowed = policy.secrets;

    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let resolved = resolve(task, a.services.settings.runtime.as_ref());
    st.model = resolved.model().map(str::to_string);
    let (argv, stdin, format) = match &task.command {
        Some(c) => (c.argv(), None, resolved.format()),
        None => {
            let prompt = build_prompt(task);
            let prompt_file = format!("{}/prompt.md", hp.attempt_dir);
            let program = a.host.runtime_program();
            let launch = agent_launch(
                &resolved,
                &LaunchInput {
                    prompt: &prompt,
                    prompt_file: &prompt_file,
                    attempt_dir: &hp.attempt_dir,
                    task_id: &task.id,
                    program_override: program.as_deref(),
                    stdin_supported: a.host.writes_stdin(),
                    tool_profile: task.worker.as_ref().and_then(|w| w.tool_profile.as_deref()),
                    tools: task
                        .worker
                        .as_ref()
                        .map(|w| w.tools.as_slice())
                        .unwrap_or_default(),
                },
            )
            .map_err(|e| Launched::NotStarted(Judgement::task_fail(e)))?;
            files.push(("prompt.md".into(), prompt.into_bytes()));
            st.preset = launch.preset;
            (launch.argv, launch.stdin, launch.format)
        }
    };

    // An agent runtime's `secret_env` ([runtime]); the task's own
    // `secret_env` is added (and required) by `build_env`.
    let secrets = if st.runtime && policy.secrets {
        a.services
            .settings
            .runtime
            .as_ref()
            .map(|r| r.secret_env.as_slice())
    } else {
        None
    };
    let api = a
        .services
        .tokens
        .as_ref()
        // Not for a worker its trust denies a token, nor into a network
        // namespace of its own (orca's loopback is not reachable there).
        .filter(|_| a.host.reaches_local_api() && policy.api_token && plan.network.is_none())
        .map(|t| {
            (
                t.api_url(),
                crate::host::EnvValue::secret(t.issue(&a.attempt, a.spawn_depth)),
            )
        });
    let ctx = OrcaContext {
        run: a.attempt.run.clone(),
        task: a.attempt.task.clone(),
        attempt: a.attempt.attempt,
        attempt_id: a.attempt.to_string(),
        workspace: hp.workspace.clone(),
        attempt_dir: hp.attempt_dir.clone(),
        spawn_depth: a.spawn_depth,
        api,
        // A run an agent started: the event that woke it (a local file,
        // for hosts that see this machine's filesystem).
        event_file: Some(a.services.ws.run_dir(&a.attempt.run).join("event.json"))
            .filter(|f| a.host.reaches_local_api() && f.is_file())
            .map(|f| f.display().to_string()),
    };
    let env = build_env(task, &a.host_allowlist, secrets, &ctx, |k| {
        std::env::var(k).ok()
    })
    .map_err(|e| Launched::NotStarted(Judgement::task_fail(e.to_string())))
    .map(|mut env| {
        if !policy.secrets {
            // The task's own secret_env is withheld too.
            env.retain(|v| !task.secret_env.contains(&v.name));
        }
        env
    })?;
    st.secrets = Secrets::new(
        env.iter()
            .filter(|v| v.value.is_secret())
            .map(|v| v.value.expose().to_string()),
    );

    a.host
        .prepare(&hp, &files)
        .await
        .map_err(|e| host_judgement(e, &a.worker))?;

    let cap = a.services.settings.log_cap;
    let stdout_log = st.attempt_dir.join("stdout.log");
    let stderr_log = st.attempt_dir.join("stderr.log");
    st.started = Timestamp::now();
    // Freshness checks compare file mtimes with this: take it on their clock.
    st.started_sys = crate::scorer::checks::file_clock_now();
    st.last_output.store(st.started.nanos(), Ordering::Relaxed);
    let mut running = a
        .host
        .start(Launch {
            argv,
            env,
            paths: hp,
            attempt_id: a.attempt.to_string(),
            stdin,
            confine: st.confine.clone(),
        })
        .await
        .map_err(|e| host_judgement(e, &a.worker))?;
    st.proc = Some(running.proc);
    st.notes.append(&mut running.notes);

    // Readers and the exit waiter start at once (a full pipe would block
    // the worker); the journal learns of the group right after.
    st.open_outputs = 2;
    spawn_reader(
        running.stdout,
        LogStream::Stdout,
        stdout_log,
        cap,
        Some(format),
        myself.clone(),
        st,
    );
    spawn_reader(
        running.stderr,
        LogStream::Stderr,
        stderr_log,
        cap,
        None,
        myself.clone(),
        st,
    );
    let me = myself.clone();
    tokio::spawn(async move {
        let r = running.exit.await.map_err(|e| e.to_string());
        let _ = me.cast(AttemptMsg::Exited(r));
    });

    let started = Event::AttemptStarted {
        attempt: a.attempt.clone(),
        worker: a.worker.clone(),
        host: a.host.name(),
        pid: running.proc.pid,
        pgid: running.proc.pgid,
        proc_start: running.proc.proc_start,
        counted: a.counted,
    };
    // Queued, not awaited: nothing waits on it, and the terminal batch's
    // durability covers it (appends are ordered). A failure comes back as
    // JournalFailed, which kills the group: unrecorded work must not run.
    queue(st, vec![started]);

    // Timers: heartbeat, timeout, budget seconds.
    let h = myself.send_after(a.stale_after, || AttemptMsg::StaleCheck);
    st.timers.push(h.abort_handle());
    if let Some(t) = task.timeout_seconds {
        let h = myself.send_after(t.as_duration(), || {
            AttemptMsg::Deadline(DeadlineKind::Timeout)
        });
        st.timers.push(h.abort_handle());
    }
    if let Some(b) = task.budget.as_ref().and_then(|b| b.max_seconds) {
        let h = myself.send_after(b.as_duration(), || {
            AttemptMsg::Deadline(DeadlineKind::BudgetSeconds)
        });
        st.timers.push(h.abort_handle());
    }
    Ok(())
}

/// How a host's refusal ends an attempt that could not start: a transport
/// failure is retried; the worker's own configuration (`worker`) is not —
/// someone must fix it.
fn host_judgement(e: crate::host::HostError, worker: &str) -> Launched {
    use crate::host::HostError;
    Launched::NotStarted(match e {
        HostError::Transport(_) => Judgement::transport(e.to_string()),
        HostError::Config(why) => Judgement::task_fail(format!(
            "worker {worker} is misconfigured: {why} (not retried: fix the worker's host settings)"
        )),
        HostError::Spawn { .. } | HostError::Io { .. } => Judgement::task_fail(e.to_string()),
    })
}

fn spawn_reader(
    stream: OutputStream,
    which: LogStream,
    path: PathBuf,
    cap: u64,
    parse: Option<StreamFormat>,
    me: ActorRef<AttemptMsg>,
    st: &AttemptState,
) {
    // One stateful parser per stream: the format's (Claude's repeated
    // message ids, Codex's cumulative usage, …).
    let mut parser = parse.map(Parser::new);
    let last_output = st.last_output.clone();
    let abandon = st.abandon.subscribe();
    // Secret values the worker prints never reach the log files.
    let redactor = st.secrets.stream();
    tokio::spawn(async move {
        let logged = pump(
            stream,
            &path,
            cap,
            redactor,
            parser.is_some().then_some(MAX_PARSED_LINE),
            Some(abandon),
            |p| match p {
                Pumped::Output => last_output.store(Timestamp::now().nanos(), Ordering::Relaxed),
                Pumped::Capped => {
                    let _ = me.cast(AttemptMsg::LogCapped(which));
                }
                Pumped::Line(line) => {
                    if let (Some(p), Some(line)) = (parser.as_mut(), line) {
                        let signals = p.feed(line);
                        if signals.iter().any(|s| *s != Signal::Heartbeat) {
                            let _ = me.cast(AttemptMsg::Signals(signals));
                        }
                    }
                }
            },
        )
        .await;
        let _ = me.cast(AttemptMsg::OutputClosed(which, logged));
    });
}

/// Queues events without waiting for durability (appends are ordered: the
/// run's decision about this attempt comes later and is acted on only once
/// durable); a failure reaches the actor as `JournalFailed`.
fn queue(st: &AttemptState, events: Vec<Event>) {
    let batch = events
        .into_iter()
        .map(|e| NewEvent::new(st.path.to_string(), e))
        .collect();
    st.persister.append(batch, ());
}

/// Journals events for this attempt and waits until they are durable; a
/// journal failure fails the actor.
async fn journal(st: &AttemptState, events: Vec<Event>) -> Result<(), ActorProcessingErr> {
    let batch = events
        .into_iter()
        .map(|e| NewEvent::new(st.path.to_string(), e))
        .collect();
    st.a.services.journal.append(batch).await?;
    Ok(())
}

async fn on_signals(
    myself: &ActorRef<AttemptMsg>,
    st: &mut AttemptState,
    signals: Vec<Signal>,
) -> Result<(), ActorProcessingErr> {
    let changes = st.stream.observe(signals);
    let mut events = Vec::new();
    let mut usage_changed = false;
    for c in changes {
        let event = match c {
            Change::Running => WorkerEvent::Running,
            Change::Tool(tool) => WorkerEvent::RunningTool {
                tool: bounded(&st.secrets.redact(&tool), 200),
            },
            Change::Usage { tokens, tool_calls } => {
                usage_changed = true;
                WorkerEvent::Usage { tokens, tool_calls }
            }
            Change::Artifact { kind, path } => WorkerEvent::Artifact {
                kind: bounded(&kind, 200),
                path: bounded(&path, 1000),
            },
            Change::NeedsHuman(reason) => WorkerEvent::NeedsHuman {
                reason: bounded(&st.secrets.redact(&reason), SUMMARY_MAX),
            },
            Change::Done => WorkerEvent::Completed,
            Change::Error(error) => WorkerEvent::Failed {
                error: bounded(&st.secrets.redact(&error), SUMMARY_MAX),
            },
        };
        events.push(Event::WorkerReported {
            attempt: st.a.attempt.clone(),
            event,
        });
    }
    // Budgets are checked live, between events, against orca's own count
    // and cost (the CLI's reported cost is kept, never trusted).
    let budget = usage_changed
        .then(|| breach(st))
        .flatten()
        .map(|b| b.limit());
    if let Some(limit) = budget.filter(|_| st.stop.is_none()) {
        events.push(Event::WorkerReported {
            attempt: st.a.attempt.clone(),
            event: WorkerEvent::BudgetExceeded { limit },
        });
    }
    if budget.is_some() {
        // The report must be durable before the stop it causes.
        journal(st, events).await?;
    } else if !events.is_empty() {
        queue(st, events);
    }
    if let Some(limit) = budget {
        request_stop(myself, st, StopCause::Budget(limit)).await;
    }
    Ok(())
}

/// orca's cost of what the stream reported so far, on the model it named
/// (else the configured one), with that model; `None`: nothing to price,
/// or a model the price table does not know.
fn cost(st: &AttemptState) -> Option<(f64, String)> {
    if st.stream.usage.is_zero() {
        return None;
    }
    let models = [st.stream.model.as_deref(), st.model.as_deref()];
    st.a.services
        .settings
        .prices
        .cost_usd_first(&st.stream.usage, models.into_iter().flatten())
        .map(|(c, m)| (c, m.to_string()))
}

/// The first of the task's budgets the stream has gone past.
fn breach(st: &AttemptState) -> Option<BudgetBreach> {
    let budget = st.a.task.budget.as_ref()?;
    attempt_breach(budget, &st.stream, cost(st).map(|(c, _)| c))
}

/// What the attempt used, for its end's `AttemptUsage` and its receipt.
fn usage_record(st: &AttemptState) -> UsageRecord {
    let priced = cost(st);
    UsageRecord {
        usage: st.stream.usage,
        tokens: st.stream.tokens,
        model: priced
            .as_ref()
            .map(|(_, m)| m.clone())
            .or_else(|| st.stream.model.clone())
            .or_else(|| st.model.clone()),
        cost_usd: priced.map(|(c, _)| c),
        reported_cost_usd: st.stream.reported_cost_usd,
    }
}

async fn on_stale_check(
    myself: &ActorRef<AttemptMsg>,
    st: &mut AttemptState,
) -> Result<(), ActorProcessingErr> {
    if st.exit.is_some() || st.stop.is_some() {
        return Ok(());
    }
    let last = Timestamp(st.last_output.load(Ordering::Relaxed));
    let now = Timestamp::now();
    let silent = now.millis_since(last);
    let stale_ms = st.a.stale_after.as_millis() as u64;
    if silent >= stale_ms {
        // The `stale` alert is raised now, with the report (it clears when
        // the attempt speaks again or ends).
        let alert = crate::alert::AlertRaised::new(
            crate::model::AlertClass::Stale,
            crate::alert::AlertSource::run(&st.a.attempt.run),
            Some(st.a.attempt.task.clone()),
            Some(st.a.attempt.attempt),
            Some(st.a.worker.clone()),
            format!(
                "no output or event for {} s (stale_after {} s)",
                silent / 1000,
                stale_ms / 1000
            ),
            now,
        );
        journal(
            st,
            vec![
                Event::WorkerReported {
                    attempt: st.a.attempt.clone(),
                    event: WorkerEvent::Stale { silent_ms: silent },
                },
                alert.event(),
            ],
        )
        .await?;
        request_stop(myself, st, StopCause::Stale { silent_ms: silent }).await;
    } else {
        let next = Duration::from_millis(stale_ms - silent);
        let h = myself.send_after(next, || AttemptMsg::StaleCheck);
        st.timers.push(h.abort_handle());
    }
    Ok(())
}

async fn request_stop(myself: &ActorRef<AttemptMsg>, st: &mut AttemptState, cause: StopCause) {
    if st.finished || st.exit.is_some() || st.stop.is_some() {
        return;
    }
    st.stop = Some(cause);
    stop_group(myself, st).await;
}

/// SIGTERM to the group, SIGKILL after the grace.
async fn stop_group(myself: &ActorRef<AttemptMsg>, st: &mut AttemptState) {
    let Some(proc) = st.proc else {
        return;
    };
    let _ = st.a.host.signal(&proc, Sig::Term).await;
    if st.kill_timer.is_none() {
        let h = myself.send_after(st.a.services.settings.grace, || AttemptMsg::KillGroup);
        st.kill_timer = Some(h.abort_handle());
    }
}

async fn maybe_finish(
    myself: &ActorRef<AttemptMsg>,
    st: &mut AttemptState,
) -> Result<(), ActorProcessingErr> {
    if st.finished || st.open_outputs > 0 {
        return Ok(());
    }
    let Some(exit) = st.exit else {
        return Ok(());
    };
    st.finished = true;
    for t in st.timers.drain(..) {
        t.abort();
    }
    queue(
        st,
        vec![Event::AttemptExited {
            attempt: st.a.attempt.clone(),
            exit_code: exit.code,
            signal: exit.signal,
        }],
    );
    // The group may still be draining after SIGTERM: make sure nothing of
    // the attempt outlives it (a group seen gone at the exit stays gone).
    if let Some(proc) = st.proc.filter(|_| !st.group_gone) {
        if st.a.host.alive(&proc).await.unwrap_or(false) {
            let _ = st.a.host.signal(&proc, Sig::Kill).await;
        }
    }
    if let Some(t) = st.kill_timer.take() {
        t.abort();
    }
    let cap = st.a.services.settings.artifact_cap;
    if let Some(hp) = &st.paths {
        match st.a.host.collect(hp, &st.attempt_dir, cap).await {
            Ok(notes) => st.notes.extend(notes),
            Err(e) => st.notes.push(format!("cannot fetch artifacts: {e}")),
        }
    }
    let scan = {
        let root = st.a.services.ws.root().to_path_buf();
        let task_root = st.a.task.workspace_root().map(str::to_string);
        let rel = st.attempt_dir_rel.clone();
        let expected = st.a.task.expected_artifacts.clone();
        let declared = st.stream.artifacts.clone();
        let logs: Vec<&'static str> = ["stdout.log", "stderr.log"]
            .into_iter()
            .zip(st.logged)
            .filter_map(|(name, logged)| logged.then_some(name))
            .collect();
        // Reading and hashing files is blocking work; an attempt that left
        // none (a silent process) only needs its missing kinds.
        let blocking = artifacts::has_files(&st.attempt_dir, &logs, &declared);
        let scan = move || {
            artifacts::scan(&ScanInput {
                workspace_root: &root,
                task_root: task_root.as_deref(),
                attempt_dir_rel: &rel,
                logs: &logs,
                expected: &expected,
                declared: &declared,
                cap,
            })
        };
        if blocking {
            tokio::task::spawn_blocking(scan).await.unwrap_or_default()
        } else {
            scan()
        }
    };
    let expected_code = st.a.task.scorer.as_ref().and_then(|s| match s.typed() {
        Ok(Scorer::ExitCode { expected }) => Some(expected),
        _ => None,
    });
    // A budget the stream went past only in its last lines (Gemini reports
    // usage once, at the end): the attempt fails on it all the same.
    if st.stop.is_none() {
        if let Some(limit) = breach(st).map(|b| b.limit()) {
            queue(
                st,
                vec![Event::WorkerReported {
                    attempt: st.a.attempt.clone(),
                    event: WorkerEvent::BudgetExceeded { limit },
                }],
            );
            st.stop = Some(StopCause::Budget(limit));
        }
    }
    if let Some(w) = &st.confine.writable {
        let tail = crate::host::logcap::tail_text(&st.attempt_dir.join("stderr.log"), 4096);
        st.notes
            .extend(crate::policy::denial_note(w, exit.code, &tail));
    }
    let judged = judge(&Evidence {
        exit,
        stop: st.stop.as_ref(),
        runtime: st.runtime,
        expected_code,
        stream_error: st.stream.final_error(),
        needs_human: st.stream.needs_human.as_deref(),
        missing_artifacts: &scan.missing,
        preset: st.preset,
        runtime_limit: st.stream.limit,
    });
    let judgement = match (&st.lost, judged) {
        (Some(lost), _) => Judgement::transport(format!("connection to the host lost: {lost}")),
        (None, Some(j)) => j,
        (None, None) => {
            let mut d = draft(st);
            d.exit = Some(exit);
            d.artifacts = scan.refs.clone();
            score(st, exit, d).await
        }
    };
    let mut draft = draft(st);
    draft.exit = Some(exit);
    draft.artifacts = scan.refs;
    draft.notes.extend(scan.notes.iter().cloned());
    complete(myself, st, judgement, draft).await
}

/// What is known of the attempt for its receipt (without its end).
fn draft(st: &AttemptState) -> ReceiptDraft {
    let mut d = ReceiptDraft::new(st.a.attempt.clone(), st.a.worker.clone(), st.started);
    d.notes = st.notes.clone();
    d
}

/// Asks the run's scorer. A scorer that errors, times out or is gone gives
/// fail/verifier: the receipt is never lost.
async fn score(st: &AttemptState, exit: ExitInfo, draft: ReceiptDraft) -> Judgement {
    let Some(spec) = st.a.task.scorer.clone() else {
        return Judgement::pass("exited with code 0");
    };
    let Some(scorer) = st.a.scorer.clone() else {
        return Judgement::verifier_error("the run's scorer is not running");
    };
    let artifacts = draft.artifacts.clone();
    let receipt = draft.receipt(
        &Judgement::partial("awaiting the scorer"),
        &st.secrets,
        Timestamp::now(),
    );
    let timeout = spec.effective_timeout().as_duration();
    let req = crate::scorer::ScoreRequest {
        attempt: st.a.attempt.clone(),
        scorer: spec,
        workspace_root: st.a.services.ws.root().to_path_buf(),
        task_root: st.a.task.workspace_root().map(str::to_string),
        attempt_dir_rel: st.attempt_dir_rel.clone(),
        started: st.started_sys,
        exit,
        draft: receipt,
        artifacts,
        objective: st.a.task.objective.clone(),
        runtime: st.a.services.settings.runtime.clone(),
        log_cap: st.a.services.settings.log_cap,
        secrets: st.secrets.clone(),
        confine: st.confine.clone(),
        secrets_allowed: st.secrets_allowed,
    };
    // The scorer enforces the timeout; the margin covers a scorer actor that
    // died with the request in its mailbox.
    let margin = timeout + Duration::from_secs(10);
    match scorer
        .call(
            |tx| crate::scorer::ScorerMsg::Score(Box::new(req), tx),
            Some(margin),
        )
        .await
    {
        Ok(ractor::rpc::CallResult::Success(j)) => j,
        Ok(ractor::rpc::CallResult::Timeout) => {
            Judgement::verifier_error("the scorer did not answer in time")
        }
        Ok(ractor::rpc::CallResult::SenderError) | Err(_) => {
            Judgement::verifier_error("the run's scorer stopped before answering")
        }
    }
}

async fn finish_without_process(
    myself: &ActorRef<AttemptMsg>,
    st: &mut AttemptState,
    j: Judgement,
) -> Result<(), ActorProcessingErr> {
    st.finished = true;
    let d = draft(st);
    complete(myself, st, j, d).await
}

/// Cleans up on the host and reports the attempt's end to its run, which
/// journals it with its decision (one batch) and writes `receipt.json`.
async fn complete(
    myself: &ActorRef<AttemptMsg>,
    st: &mut AttemptState,
    j: Judgement,
    draft: ReceiptDraft,
) -> Result<(), ActorProcessingErr> {
    let mut outcome =
        AttemptOutcome::new(&draft, j, st.stop.clone(), &st.secrets, Timestamp::now());
    outcome.usage = Some(usage_record(st));
    if let Some(hp) = &st.paths {
        if let Err(e) = st.a.host.cleanup(hp).await {
            tracing::warn!(attempt = %st.a.attempt, error = %e, "cleanup on the host failed");
        }
    }
    let _ = st.a.supervisor.send_message(outcome);
    myself.stop(None);
    Ok(())
}

/// A second Ctrl-C: SIGKILL the group now and wait (bounded) until it is
/// gone, so that when orca exits the attempt's processes are gone too.
async fn kill_now(st: &mut AttemptState) -> Result<(), (crate::model::AttemptRef, String)> {
    let Some(proc) = st.proc else {
        return Ok(());
    };
    let attempt = st.a.attempt.clone();
    if let Err(e) = st.a.host.signal(&proc, Sig::Kill).await {
        return Err((attempt, e.to_string()));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match st.a.host.alive(&proc).await {
            Ok(false) => return Ok(()),
            Ok(true) if tokio::time::Instant::now() < deadline => {
                // SIGKILL is delivered asynchronously and nothing signals
                // the end of a whole group: look again shortly.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(true) => return Err((attempt, "its process group is still alive".into())),
            Err(e) => return Err((attempt, e.to_string())),
        }
    }
}
