//! The shell orca runs on an ssh host: the task wrapper and the control
//! commands (signal, alive, kill an orphan, missing files, cleanup).
//!
//! sshd hands every exec request to the user's login shell (`$SHELL -c`),
//! so each command string is `exec /bin/sh -c '<script>' orca <args…>`:
//! one fixed POSIX script, everything variable passed as single-quoted
//! positional arguments (never interpolated into the script), and no
//! environment *values* anywhere in the string — they travel as SSH `env`
//! requests.
//!
//! Remote requirements: Linux (`/proc`), a POSIX `/bin/sh`, util-linux
//! `setsid` (with `-w`), coreutils `realpath`, GNU or busybox `grep -z`.

/// Quotes `s` for a POSIX shell: `'…'`, with `'` as `'\''`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `exec /bin/sh -c '<script>' orca '<arg>'…`. Arguments with a NUL byte
/// cannot be passed through a command line: `None`.
pub fn command<S: AsRef<str>>(script: &str, args: &[S]) -> Option<String> {
    if script.contains('\0') || args.iter().any(|a| a.as_ref().contains('\0')) {
        return None;
    }
    let mut cmd = String::from("exec /bin/sh -c ");
    cmd.push_str(&quote(script));
    cmd.push_str(" orca");
    for a in args {
        cmd.push(' ');
        cmd.push_str(&quote(a.as_ref()));
    }
    Some(cmd)
}

/// Marker lines the task wrapper prints on stdout before the task's own
/// output.
pub const PGID_MARK: &str = "ORCA-PGID ";
pub const ERR_MARK: &str = "ORCA-ERR ";

/// The outer half of the task wrapper (a child of the login shell, in
/// sshd's session): starts the inner half in a new session and process
/// group and turns its end back into the task's real end — an exit code as
/// it is, a death by signal `N` as the wrapper's own death by `N`, which
/// sshd reports as `exit-signal` (for the signals sshd can name; others as
/// exit code 128 + `N`, as a shell would).
///
/// `setsid setsid -w`: a shell cannot tell `exit 143` from SIGTERM
/// (both are `$? = 143`), but `setsid -w` can, and it forks and waits only
/// when it already leads a process group. The first `setsid` (a forked
/// child, so it does not fork) makes that group; the second forks the
/// task's session and waits for it, reporting a signal `N` as exit status
/// `N` plus a complaint on its *own* stderr — captured here apart from
/// the task's, which fds 3 and 4 carry past the capture.
///
/// Arguments: the inner script, then the inner script's arguments.
pub const TASK_OUTER: &str = r#"i=$1; shift
exec 3>&1 4>&2
e=$(setsid setsid -w /bin/sh -c "$i" orca "$@" 2>&1 1>&3)
r=$?
exec 3>&- 4>&-
if [ -n "$e" ]; then
  s=$((r & 127))
  case $s in
    # The signals sshd names in exit-signal (same numbers on every Linux).
    1|2|3|4|6|8|9|11|13|14|15)
      ulimit -c 0 2>/dev/null
      trap - "$s" 2>/dev/null
      kill -"$s" $$ 2>/dev/null ;;
    # Others as a shell reports them.
    *) [ "$s" -ge 1 ] && [ "$s" -le 64 ] && exit $((128 + s)) ;;
  esac
  printf '%s\n' "$e" >&2
fi
exit "$r"
"#;

/// The inner half: the new session's leader. Restores the task's stderr,
/// enters the task's working directory (which must exist: it is inside the
/// host's `working_directory`, never created by orca), makes the attempt
/// directory,
/// checks the program, keeps only PATH, HOME and the variables orca sent,
/// reports `ORCA-PGID <pgid> <start time>` (the start time is
/// `/proc/<pid>/stat` field 22, clock ticks since boot: pids are reused,
/// this pair is not) and execs the task, which keeps the pid and so leads
/// the group.
///
/// Arguments: attempt dir, working dir, the kept names (space separated),
/// then the task's argv.
pub const TASK_INNER: &str = r#"exec 2>&4 3>&- 4>&-
orca_f() { orca_t=${20}; }
read -r orca_l < /proc/$$/stat || { printf 'ORCA-ERR proc\n'; exit 127; }
orca_f ${orca_l##*) }
cd -- "$2" 2>/dev/null || { printf 'ORCA-ERR cwd\n'; exit 127; }
# Twice: a cleanup of the run's last other attempt may remove the empty
# run directory between mkdir -p's steps.
[ -d "$1" ] || mkdir -p -- "$1" 2>/dev/null || mkdir -p -- "$1" ||
  { printf 'ORCA-ERR attempt-dir\n'; exit 127; }
orca_k=" PATH HOME $3 "
shift 3
case $1 in
  */*) [ -f "$1" ] && [ -x "$1" ] ;;
  *) command -v -- "$1" >/dev/null 2>&1 ;;
esac || { printf 'ORCA-ERR program\n'; exit 127; }
orca_l=$(export -p)
IFS='
'
for orca_n in $orca_l; do
  case $orca_n in
    "export "*) orca_n=${orca_n#export } ;;
    "declare -x "*) orca_n=${orca_n#declare -x } ;;
    *) continue ;;
  esac
  orca_n=${orca_n%%=*}
  case $orca_k in *" $orca_n "*) ;; *) unset "$orca_n" 2>/dev/null ;; esac
done
unset IFS
printf 'ORCA-PGID %s %s\n' $$ "$orca_t"
unset orca_k orca_l orca_n orca_t
unset -f orca_f
exec "$@"
"#;

/// `kill -<SIG> -- -<pgid>`; a group that is already gone is not an error.
/// Arguments: signal name, pgid.
pub const SIGNAL: &str = r#"kill -s "$1" -- "-$2" 2>/dev/null
exit 0
"#;

/// Shell functions over `/proc/<pid>/stat`: `st <fields after "comm) ">`
/// sets `fs` (state), `fg` (process group) and `ft` (start time, field
/// 22); `live <pgid>` succeeds when the group has a live member (zombies
/// do not count: reaping orphans is PID 1's business and may lag).
macro_rules! proc_fns {
    () => {
        r#"st() { fs=$1; fg=$3; ft=${20}; }
live() {
  kill -s 0 -- "-$1" 2>/dev/null || return 1
  for d in /proc/[0-9]*; do
    read -r l < "$d/stat" 2>/dev/null || continue
    st ${l##*) }
    [ "$fg" = "$1" ] && [ "$fs" != Z ] && return 0
  done
  return 1
}
"#
    };
}

/// Exit 0 when a live (non-zombie) process of group `$1` exists, else 1.
/// Then, if an attempt directory `$2` is given and has no `artifacts/`,
/// prints `no-artifacts` (the SFTP fetch can be skipped).
pub const ALIVE: &str = concat!(
    proc_fns!(),
    r#"r=1
[ "$1" -gt 1 ] 2>/dev/null && live "$1" && r=0
[ -n "$2" ] && [ ! -d "$2/artifacts" ] && echo no-artifacts
exit $r
"#
);

/// Stops what is left of an attempt, if it is provably the attempt's: the
/// recorded group when its leader still has the recorded start time, and
/// every group with a process carrying `ORCA_ATTEMPT_ID=<id>` in its
/// environment (pids are reused; these two are not). SIGTERM, up to
/// `ticks` × 50 ms for the groups to go (a shell has no pidfd to wait on),
/// then SIGKILL and up to a second more until no member is left. Prints
/// `killed` when there was anything to stop.
///
/// Arguments: attempt id, pgid, start time (0 = unknown), ticks.
pub const KILL_ORPHAN: &str = concat!(
    proc_fns!(),
    r#"id=$1 pg=$2 t0=$3 n=$4
gs=""
if [ "$pg" -gt 1 ] 2>/dev/null && [ "$t0" != 0 ] && read -r l < "/proc/$pg/stat" 2>/dev/null; then
  st ${l##*) }
  [ "$ft" = "$t0" ] && [ "$fg" = "$pg" ] && [ "$fs" != Z ] && gs=" $pg"
fi
for e in $(grep -lzxF -- "ORCA_ATTEMPT_ID=$id" /proc/[0-9]*/environ 2>/dev/null); do
  p=${e#/proc/}; p=${p%/environ}
  [ "$p" = $$ ] && continue
  read -r l < "/proc/$p/stat" 2>/dev/null || continue
  st ${l##*) }
  [ "$fs" != Z ] && [ "$fg" -gt 1 ] 2>/dev/null || continue
  case "$gs " in *" $fg "*) ;; *) gs="$gs $fg" ;; esac
done
[ -n "$gs" ] || exit 0
for g in $gs; do kill -s TERM -- "-$g" 2>/dev/null; done
i=0
while [ "$i" -lt "$n" ]; do
  a=""
  for g in $gs; do live "$g" && a="$a $g"; done
  gs=$a
  [ -n "$gs" ] || break
  sleep 0.05
  i=$((i + 1))
done
for g in $gs; do kill -s KILL -- "-$g" 2>/dev/null; done
# SIGKILL lands asynchronously: answer once the groups are gone (at most
# a second), so that "killed" means no member is left running.
i=0
while [ -n "$gs" ] && [ "$i" -lt 20 ]; do
  a=""
  for g in $gs; do live "$g" && a="$a $g"; done
  gs=$a
  [ -n "$gs" ] && sleep 0.05
  i=$((i + 1))
done
echo killed
"#
);

/// Prints the index of every file (relative to the working dir `$2`) that
/// does not exist or leads outside the workspace `$1`; `ORCA-ERR ws` when
/// the workspace itself is missing.
///
/// Arguments: workspace, working dir, files…
pub const MISSING: &str = r#"w=$1 c=$2; shift 2
w=$(cd -- "$w" 2>/dev/null && pwd -P) || { echo 'ORCA-ERR ws'; exit 0; }
i=0
for f; do
  case $f in /*) p=$f ;; *) p=$c/$f ;; esac
  r=$(realpath -e -- "$p" 2>/dev/null) || r=""
  case $r in "$w"|"$w"/*) ;; *) echo "$i" ;; esac
  i=$((i + 1))
done
"#;

/// Removes attempt directories, then their task and run directories when
/// they are empty. Arguments: (attempt dir, task dir, run dir)…
/// One `rm` and one `rmdir` for the whole batch (task directories before
/// run directories).
pub const CLEANUP: &str = r#"a="" t="" r=""
while [ "$#" -ge 3 ]; do
  a="$a
$1" t="$t
$2" r="$r
$3"
  shift 3
done
IFS='
'
set -f
[ -n "$a" ] && rm -rf -- $a
rmdir -- $t $r 2>/dev/null
exit 0
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        let args = ["plain", "it's", "$HOME `x` \"q\"", "a\nb", "", "--"];
        let cmd = command("printf '%s|' \"$@\"", &args).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "plain|it's|$HOME `x` \"q\"|a\nb||--|"
        );
        assert!(command("x", &["a\0b"]).is_none());
    }

    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Command, Output};

    /// Runs the task wrapper as sshd would: through a shell, as the leader
    /// of its own process group.
    fn wrapped(dir: &std::path::Path, keep: &str, argv: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args = vec![
            TASK_INNER.to_string(),
            dir.join("attempt").display().to_string(),
            dir.display().to_string(),
            keep.to_string(),
        ];
        args.extend(argv.iter().map(|a| a.to_string()));
        let cmd = command(TASK_OUTER, &args).unwrap();
        Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .envs(env.iter().copied())
            .process_group(0)
            .output()
            .unwrap()
    }

    fn report(out: &Output) -> (i32, u64, String) {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (first, rest) = text.split_once('\n').unwrap();
        let mut it = first.strip_prefix(PGID_MARK).unwrap().split(' ');
        (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
            rest.to_string(),
        )
    }

    #[test]
    fn the_wrapper_reports_the_group_and_the_real_end() {
        let d = tempfile::tempdir().unwrap();
        let out = wrapped(
            d.path(),
            "",
            &[
                "sh",
                "-c",
                "echo $$ $(cut -d' ' -f5 /proc/$$/stat); echo err >&2; exit 3",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(3));
        let (pgid, start, rest) = report(&out);
        assert!(pgid > 1 && start > 0);
        assert_eq!(rest, format!("{pgid} {pgid}\n"), "the task leads the group");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
        assert!(d.path().join("attempt").is_dir());
        // A death by signal comes back as that signal, not as 128 + n.
        let out = wrapped(d.path(), "", &["sh", "-c", "kill -TERM $$"], &[]);
        assert_eq!(out.status.signal(), Some(libc::SIGTERM));
        assert!(out.stderr.is_empty(), "{:?}", out.stderr);
        let out = wrapped(d.path(), "", &["sh", "-c", "kill -USR2 $$"], &[]);
        assert_eq!(out.status.code(), Some(128 + libc::SIGUSR2));
        let out = wrapped(d.path(), "", &["sh", "-c", "exit 143"], &[]);
        assert_eq!(out.status.code(), Some(143), "exit 143 is an exit code");
    }

    #[test]
    fn the_wrapper_keeps_only_the_sent_names_and_checks_first() {
        let d = tempfile::tempdir().unwrap();
        let out = wrapped(
            d.path(),
            "ORCA_X KEEP_ME",
            &["env"],
            &[
                ("ORCA_X", "1"),
                ("KEEP_ME", "a b"),
                ("DROP_ME", "x"),
                ("orca_k", "y"),
            ],
        );
        assert!(out.status.success());
        let (_, _, rest) = report(&out);
        let mut names: Vec<&str> = rest
            .lines()
            .filter_map(|l| l.split_once('=').map(|(n, _)| n))
            .filter(|n| *n != "PWD")
            .collect();
        names.sort();
        assert_eq!(names, ["HOME", "KEEP_ME", "ORCA_X", "PATH"], "{rest}");
        assert!(rest.contains("KEEP_ME=a b\n"));
        let out = wrapped(d.path(), "", &["no-such-program-orca"], &[]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ORCA-ERR program\n");
        let out = wrapped(&d.path().join("missing"), "", &["true"], &[]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ORCA-ERR cwd\n");
        assert!(!d.path().join("missing").exists(), "no directory was made");
    }

    fn sh(script: &str, args: &[&str]) -> Output {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(command(script, args).unwrap())
            .output()
            .unwrap()
    }

    #[test]
    fn control_scripts() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().canonicalize().unwrap();
        std::fs::create_dir(ws.join("sub")).unwrap();
        std::fs::write(ws.join("sub/here.txt"), "x").unwrap();
        let out = sh(
            MISSING,
            &[
                ws.to_str().unwrap(),
                ws.join("sub").to_str().unwrap(),
                "here.txt",
                "gone.txt",
                "../../../etc/passwd",
                "/etc/passwd",
            ],
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n2\n3\n");
        let out = sh(MISSING, &["/no/such/ws", "/", "x"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ORCA-ERR ws\n");

        // Ids unique to this test process: KILL_ORPHAN finds processes by
        // environment machine-wide, and another test run may be going on.
        let ours = format!("r{}:t:9", std::process::id());
        let other = format!("r{}:t:8", std::process::id());
        let mut child = Command::new("sleep")
            .arg("30")
            .env("ORCA_ATTEMPT_ID", &ours)
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id().to_string();
        let out = sh(ALIVE, &[&pgid, ws.to_str().unwrap()]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "no-artifacts\n");
        // Not ours by start time nor by attempt id: left alone.
        let out = sh(KILL_ORPHAN, &[&other, &pgid, "1", "2"]);
        assert!(out.stdout.is_empty());
        assert!(sh(ALIVE, &[&pgid]).status.success());
        // Ours by its environment.
        let out = sh(KILL_ORPHAN, &[&ours, "0", "0", "40"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "killed\n");
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
        assert!(!sh(ALIVE, &[&pgid, ""]).status.success());
        assert!(
            sh(SIGNAL, &["TERM", &pgid]).status.success(),
            "a gone group is fine"
        );
        let a = ws.join("runs/r/t/1");
        std::fs::create_dir_all(a.join("artifacts")).unwrap();
        let out = sh(ALIVE, &["1", a.to_str().unwrap()]);
        assert!(out.stdout.is_empty());
        let (t, r) = (ws.join("runs/r/t"), ws.join("runs/r"));
        let b = ws.join("runs/r/u/1");
        std::fs::create_dir_all(&b).unwrap();
        let out = sh(
            CLEANUP,
            &[
                a.to_str().unwrap(),
                t.to_str().unwrap(),
                r.to_str().unwrap(),
                b.to_str().unwrap(),
                b.parent().unwrap().to_str().unwrap(),
                r.to_str().unwrap(),
            ],
        );
        assert!(out.status.success());
        assert!(!r.exists(), "both attempts and their parents are gone");
    }
}
