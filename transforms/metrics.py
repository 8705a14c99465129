"""Every Beam metric khabar reports, named once.

A metric is a (namespace, name) pair. The stages and sinks count with these names, and
``pipeline/job/run.py`` reads them back for ``_SUMMARY.json`` and the conservation check
(records in = articles written + duplicates + dead letters), so a renamed counter cannot
silently drop out of the check. Names that carry a value (a stage, a language, a dedup
reason, an error) are built by the functions below. Beam-free: plain strings.
"""

from __future__ import annotations

# --- run-wide counts: the conservation check's terms
RUN = "khabar"
RECORDS_IN = "records_in"
FILES_READ = "files_read"
FILES_DEAD_LETTERED = "files_dead_lettered"  # files that became one dead letter whole
MESSAGES_IN = "messages_in"
SKIPPED_DUPLICATES = "skipped_duplicates"
WRITTEN_ARTICLES = "written_articles"
WRITTEN_DUPLICATES = "written_duplicates"
WRITTEN_DEAD_LETTERS = "written_dead_letters"
#: records read but left out by ``--limit N`` (not part of the run's records in)
CUT_BY_LIMIT = "cut_by_limit"

# --- per stage: namespace stage(<name>), names below
OK = "ok"
DEAD_LETTER = "dead_letter"
RETRIED = "retried"
READ = "read"
#: stage.read: JSON Lines files read as byte ranges, and the ranges
FILES_SPLIT = "files_split"
RANGES = "ranges"
PARSE = "parse"
DATE_LEFT_EMPTY = "date_left_empty"  # stage.parse: an unreadable date, the article kept


def stage(name: str) -> str:
    """The namespace of one stage's counters (``stage.parse``, ``stage.read``, ...)."""
    return "stage." + name


# --- language and entities: one counter per language / entity count name
LANGUAGE = "language"
ENTITIES = "entities"

# --- normalize
NORMALIZE = "normalize"
PERSIAN_NORMALIZED = "persian"
NFC_ONLY = "nfc_only"

# --- exact duplicates (reason: content or url)
DEDUP = "dedup"


def duplicates(reason: str) -> str:
    return "duplicates_" + reason


def duplicates_earlier(reason: str) -> str:
    """Copies of an earlier run's articles (``khabar replay --dedup_against``)."""
    return "duplicates_earlier_" + reason


def redelivered(reason: str) -> str:
    """A record delivered again (same item key or record id), dropped by the dedup."""
    return "redelivered_" + reason


def state_expired(reason: str) -> str:
    return "state_expired_" + reason


DUPLICATES_EARLIER_PREFIX = duplicates_earlier("")

# --- near duplicates
NEARDUP = "neardup"
SHORT_BODY = "short_body_title_lead"
TOO_SHORT = "too_short_exact_only"
OVERSIZED_BUCKETS = "oversized_buckets"
CANDIDATE_PAIRS = "candidate_pairs"
VERIFIED_PAIRS = "verified_pairs"
CC_RESIDUAL_EDGES = "cc_residual_edges"
CLUSTERS = "clusters"
CLUSTERS_MULTI = "clusters_multi"
NEAR_DUPLICATES = "duplicates"
STREAM_CANDIDATES = "stream_candidates"
STREAM_VERIFIED = "stream_verified"

# --- streaming windows (arrival time; pipeline/graph/streaming.py, stages/sinks.py)
WINDOWS = "windows"
#: records written in a late pane (behind the watermark when they reached the window)
LATE_RECORDS = "late_records"
#: late panes written (each one file per window, pane and shard)
LATE_PANES = "late_panes"
#: window files written (on-time and late panes)
PANE_FILES = "pane_files"

# --- batch work files (pipeline/stages/spill.py): articles set aside while dedup decides
WORK = "work"
WORK_RECORDS = "records_written"
WORK_BYTES = "bytes_written"
WORK_RECORDS_READ = "records_read"
WORK_FILES = "files"

# --- replay
REPLAY = "replay"
DEAD_LETTERS_IN = "dead_letters_in"
RESPLIT_DEAD_LETTERS = "resplit_dead_letters"
RESPLIT_RECORDS = "resplit_records"
REFETCHED = "refetched"
NOT_REBUILT = "not_rebuilt"
REPLAYED_FROM_PREFIX = "from."


def replayed_from(stage_name: str, error_type: str) -> str:
    """Dead letters replayed, by the stage and error they failed with the first time."""
    return f"{REPLAYED_FROM_PREFIX}{stage_name}/{error_type}"
