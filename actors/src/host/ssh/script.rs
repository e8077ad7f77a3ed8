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
/// sshd reports as `exit-signal`.
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
  if [ "$s" -ge 1 ] && [ "$s" -le 64 ]; then
    ulimit -c 0 2>/dev/null
    trap - "$s" 2>/dev/null
    kill -"$s" $$ 2>/dev/null
  fi
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
[ -d "$1" ] || mkdir -p -- "$1" || { printf 'ORCA-ERR attempt-dir\n'; exit 127; }
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

/// Exit 0 when a live (non-zombie) process of group `$1` exists, else 1.
pub const ALIVE: &str = r#"g=$1
[ "$g" -gt 1 ] 2>/dev/null || exit 1
kill -0 -- "-$g" 2>/dev/null || exit 1
for d in /proc/[0-9]*; do
  read -r l < "$d/stat" 2>/dev/null || continue
  set -- ${l##*) }
  [ "$3" = "$g" ] && [ "$1" != Z ] && exit 0
done
exit 1
"#;

/// Stops what is left of an attempt, if it is provably the attempt's: the
/// recorded group when its leader still has the recorded start time, and
/// every group with a process carrying `ORCA_ATTEMPT_ID=<id>` in its
/// environment (pids are reused; these two are not). SIGTERM, up to
/// `ticks` × 50 ms for the groups to go, then SIGKILL. Prints `killed`
/// when there was anything to stop.
///
/// Arguments: attempt id, pgid, start time (0 = unknown), ticks.
pub const KILL_ORPHAN: &str = r#"id=$1 pg=$2 st=$3 n=$4
f() { fg=$3; ft=${20}; }
gs=""
if [ "$pg" -gt 1 ] 2>/dev/null && [ "$st" != 0 ] && read -r l < "/proc/$pg/stat" 2>/dev/null; then
  f ${l##*) }
  [ "$ft" = "$st" ] && [ "$fg" = "$pg" ] && gs=" $pg"
fi
for e in $(grep -lzxF -- "ORCA_ATTEMPT_ID=$id" /proc/[0-9]*/environ 2>/dev/null); do
  p=${e#/proc/}; p=${p%/environ}
  [ "$p" = $$ ] && continue
  read -r l < "/proc/$p/stat" 2>/dev/null || continue
  f ${l##*) }
  [ "$fg" -gt 1 ] 2>/dev/null || continue
  case "$gs " in *" $fg "*) ;; *) gs="$gs $fg" ;; esac
done
[ -n "$gs" ] || exit 0
for g in $gs; do kill -s TERM -- "-$g" 2>/dev/null; done
i=0
while [ "$i" -lt "$n" ]; do
  a=""
  for g in $gs; do kill -0 -- "-$g" 2>/dev/null && a="$a $g"; done
  [ -n "$a" ] || break
  sleep 0.05
  i=$((i + 1))
done
for g in $gs; do kill -s KILL -- "-$g" 2>/dev/null; done
echo killed
"#;

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

/// Removes an attempt directory, then its task and run directories when
/// they are empty. Arguments: attempt dir, task dir, run dir.
pub const CLEANUP: &str = r#"rm -rf -- "$1"
rmdir -- "$2" 2>/dev/null
rmdir -- "$3" 2>/dev/null
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
}
