# -*- coding: utf-8 -*-
# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Find patients that are probably the same person under different PatientIDs.

Pure Python (standard library only), no Orthanc inside: the caller gives one record per
PatientID and gets back groups of likely duplicates, each with a score and the reasons, plus
the opposite problem, *collisions* (one PatientID used for clearly different people).

Input
=====
One :class:`PatientRecord` per PatientID. A record may hold several observed values, because an
Orthanc patient collects studies that were registered at different times: several names, birth
dates and sexes, the OtherPatientIDs, study dates, institutions and StudyInstanceUIDs.
:func:`records_from_observations` builds records from flat dictionaries keyed by DICOM keywords
(one per study or instance), grouped by ``PatientID``.

Normalisation
=============
* DICOM PN ``Family^Given^Middle^Prefix^Suffix``; when a name holds ``=``-separated groups
  (alphabetic ``=`` ideographic ``=`` phonetic), the alphabetic group is used, else the phonetic,
  else the ideographic one. Free text (``John Smith``, ``Smith, John``) is split into tokens: with
  a comma the family name comes first, otherwise last (with its particles: ``de la Cruz``).
* Case is folded; accents are removed (``Müller`` = ``Muller``, ``Łukasz`` = ``Lukasz``,
  ``ß`` = ``ss``); Cyrillic and Greek are transliterated with a small table (``Иванов`` =
  ``Ivanov``, ``Παπαδόπουλος`` = ``Papadopoulos``). Other scripts (Hebrew, Arabic, Japanese kana and
  kanji, Thai, ...) are **not** transliterated: they are compared as normalised script text
  (NFKC, so half-width katakana equals full-width), which finds typos and exact matches within the
  same script, but never matches a Latin spelling of the same name.
* Titles (Dr, Prof, Mr, Mrs, Herr, Frau, Mme, ...) are dropped; generational suffixes (Jr, Sr, II,
  III) are kept apart and two different ones are a conflict (father and son).
* Hyphens, apostrophes and spaces inside a component do not matter: ``Jean-Pierre`` =
  ``Jean Pierre`` = ``Jeanpierre``, ``O'Brien`` = ``OBrien``.
* Birth dates ``YYYYMMDD``, ``YYYYMM`` and ``YYYY`` (also with ``-``, ``.`` or ``/``); empty dates and
  placeholders (``19000101``, ``00000000``, years before 1850) count as unknown. Sex ``M``, ``F``, ``O``;
  anything else is unknown.

Scoring (one pair of records)
=============================
Names: family names and given names are compared separately with Jaro-Winkler similarity (0 to 1,
typo tolerant), in the recorded order and with family and given swapped; the better order wins
(reason ``name order swapped``). A surname that is a part of the other one (``Garcia`` vs
``Garcia Lopez``) counts 0.92; a given name that is the initial of the other one counts 0.85. The
name score is the mean of the family and given scores; when one record has no given name it is the
family score times 0.85. Records with several names use their best-matching pair of names.

Birth dates: same date 1.0; same year and month with an unknown day 0.9; day and month swapped
0.9; one wrong digit in the day, month or last digit of the year, or two adjacent digits
transposed, 0.85; only the year known and equal 0.85; one wrong digit in the decade or century
(dates decades apart) 0.3; anything else is a **conflict**.

Pair score:

* both birth dates usable: ``0.6 * name + 0.4 * birth_date`` (weights ``name`` and ``birth_date``);
* a birth date unknown on one side: ``name * 0.88`` (``missing_one_date_factor``);
* unknown on both sides: ``name * 0.70`` (``missing_both_dates_factor``): a name alone never reaches
  the default threshold;
* then bonuses: the PatientID of one record is listed in the OtherPatientIDs of the other, or both
  list the same other ID, ``+0.3`` (``other_ids``); a StudyInstanceUID present under both
  PatientIDs ``+0.15`` (``study_uid``); a shared institution adds ``institution`` (0 by default: shown as
  a reason only), a study date shared on a quiet day ``study_date`` (0.05, with frequencies only);
* then caps, whatever the bonuses: different family names (best Jaro-Winkler below 0.80) or
  different given names (below 0.85 and not an initial) cap the score at 0.5 -- twins have the same
  surname and birth date but different given names; a birth date conflict caps it at 0.4 -- a parent
  and a child with the same name are decades apart; different generational suffixes 0.5; different
  sex (both known) 0.7.

Frequencies (Fellegi-Sunter, from the clinic's own records)
=========================================================
:func:`find_duplicates` on ``frequency_min_records`` (200) records or more counts how many records carry each
name token, family name, given name, birth date and study date (:class:`NameFrequencies`), and estimates with
EM (:func:`estimate_m_u`) the m-probabilities of agreement on family name, given name, birth date and sex over
the candidate pairs; an unstable estimate (no convergence, a match share outside 0.1-99.9 %, some m <= u)
leaves the prior ``name_m_prior``. For a pair, the expected number of *other* people here with its name is
``u * N`` (token counts, or the other same-sex people with that full name whose birth years are more than two
years from the pair's own), and the probability that the name agreement is one person is ``m / (m + u * N)``.
It replaces the fixed ``missing_one_date_factor`` by a factor from ``missing_date_common_factor`` to
``missing_date_rare_factor``; a birth-date slip with a name variant needs ``rare_name_probability`` once the slip
itself is counted as evidence (a likelihood ratio of 10: another person's date one slip away is unlikely), a slip
alone fails for a name with ``common_name_namesakes`` other people; two look-alike names both carried by
``distinct_name_count`` records that do not sound alike are two names. A shared study date on a quiet day (under
1 % of the records) adds ``weights.study_date``. Pairs kept below the threshold only by these rules are listed as
ambiguous. Free-text names are tried in every family/given split; umlaut transcriptions and transliterations
that sound alike count as spelling variants. Each pair reports its ``evidence``.

The frequencies are those of the reading that matched (the free-text split, the swapped order; a compound given
name counts as a whole), and a person's own mistyped birth dates (one digit, a swap) are one person, not
namesakes. For a pair with a date on one side only, the prior is the share of this clinic's undated records that
are re-registrations (:func:`estimate_undated_reregistrations`: undated records with a dated namesake, less those
expected by chance): the probability is ``r m / (r m (1 + people) + (1 - r) chance)`` with ``people`` the other
people here with the name and ``chance`` the people expected to carry it by chance. A study date both records share
on a quiet day divides the namesakes by its likelihood ratio ``m / u`` (``m``: the share of this clinic's sure pairs
that share a study date, :func:`estimate_same_day_m`; ``u``: the day's share of the records).

Grouping
========
Pairs at or above ``threshold`` (default 0.8) are joined, strongest first (deterministic ties), into
groups; a join is refused when any two records of the two groups are in conflict (different sex, names
or suffixes, or birth dates far apart: more than ``max_typo_year_gap`` years, or three digits or more
that differ -- two typos of one date differ in at most two, so a typo chain stays one group), so two
different people cannot be chained through a third record. A record whose
refused link is nearly as strong as its accepted one (within ``ambiguity_margin``) is taken out of its
group and reported as *ambiguous* (for example a ``Maria Garcia`` without birth date next to two
different ``Maria Garcia``). Every member of a group matches at least one other member at or above
the threshold; the group score is its weakest accepted link.

Blocking
========
Only records that share a blocking key are compared, so the work grows near-linearly with the
number of records: birth date with day and month in sorted order plus the phonetic key of the
family or of the given name; birth year plus the phonetic keys of both name parts;
month and day plus the phonetic keys (year typos); the phonetic keys alone, used only for pairs where
a birth date is unknown or partial; PatientID/OtherPatientIDs; StudyInstanceUID. The phonetic key is
a Soundex variant that also codes the first letter (so ``Kowalski`` and ``Cowalski`` share it). A
block larger than ``max_block_size`` is not compared all-to-all: its records are sorted by normalised
name and each is compared with its ``window`` next neighbours (sorted neighbourhood), so a huge block
of, say, empty birth dates never goes quadratic.

Collisions
==========
A record whose observed names are clearly different people (a family- or given-name conflict), or
whose birth dates conflict, is a collision. Its ``kind`` is ``name_changed_in_study`` when the
differing names were seen in the same StudyInstanceUID (the study was re-sent or edited with another
name), otherwise ``id_collision``. A StudyInstanceUID found under several PatientIDs is reported in
``shared_study_uids``. Collisions are never merged; they are the opposite problem.

Output
======
:func:`find_duplicates` returns ``groups`` (each: sorted ``patient_ids``, ``score``, the ``reasons`` of
all its pairs, and ``pairs`` with each pair's score and reasons), ``ambiguous`` (``patient_id``,
``candidates``, ``reason``), ``collisions``, ``shared_study_uids``, ``stats`` (records, blocks,
capped blocks, candidate pairs, pairs above the threshold) and the ``threshold``. Groups are sorted by
score (highest first), then by PatientIDs; everything else by PatientID, so the same input always gives
the same output.

Limits
======
Two different people with the same name, the same birth date and the same sex cannot be told apart by
demographics; they are grouped (only OtherPatientIDs or a human can tell). Names in scripts without a
transliteration table only match names in the same script. A record with no name is never matched.
"""

# ruff: noqa: RUF001  (Cyrillic and Greek letters in the transliteration tables are wanted)
from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 (Ansible plugin header)

import itertools
import math
import re
import unicodedata
from functools import lru_cache

__all__ = [
    'DEFAULT_CONFIG',
    'EM_FIELDS',
    'NameFrequencies',
    'PatientRecord',
    'blocking_keys',
    'compare_birth_dates',
    'compare_names',
    'compare_records',
    'damerau_levenshtein',
    'estimate_m_u',
    'estimate_same_day_m',
    'estimate_undated_reregistrations',
    'find_collisions',
    'find_duplicates',
    'jaro_winkler',
    'normalize_text',
    'parse_birth_date',
    'parse_person_name',
    'phonetic_key',
    'records_from_observations',
]

DEFAULT_CONFIG = {
    'threshold': 0.8,
    'fields': ['name', 'birth_date', 'sex', 'other_ids', 'study_uid', 'institution', 'study_date'],
    'weights': {
        'name': 0.6,
        'birth_date': 0.4,
        'other_ids': 0.3,
        'study_uid': 0.15,
        'institution': 0.0,
        'study_date': 0.05,
    },
    'missing_one_date_factor': 0.88,
    'missing_both_dates_factor': 0.70,
    'family_min': 0.80,
    'given_min': 0.85,
    'cap_name_conflict': 0.5,
    'cap_date_conflict': 0.4,
    'cap_sex_conflict': 0.7,
    'cap_suffix_conflict': 0.5,
    'max_block_size': 60,
    'window': 12,
    'max_names_per_record': 4,
    'ambiguity_margin': 0.05,
    'frequency_min_records': 200,
    'distinct_name_count': 3,
    'missing_date_rare_factor': 0.96,
    'missing_date_common_factor': 0.6,
    'rare_name_probability': 0.5,
    'common_name_namesakes': 20.0,
    'name_m_prior': 0.9,
    'max_typo_year_gap': 2,
    'placeholder_dates': ['19000101', '00000000', '00010101', '18991231', '18991230'],
}

# ---------------------------------------------------------------------------------------------
# Text normalisation
# ---------------------------------------------------------------------------------------------

_CYRILLIC = {
    'а': 'a',
    'б': 'b',
    'в': 'v',
    'г': 'g',
    'д': 'd',
    'е': 'e',
    'ё': 'e',
    'ж': 'zh',
    'з': 'z',
    'и': 'i',
    'й': 'i',
    'к': 'k',
    'л': 'l',
    'м': 'm',
    'н': 'n',
    'о': 'o',
    'п': 'p',
    'р': 'r',
    'с': 's',
    'т': 't',
    'у': 'u',
    'ф': 'f',
    'х': 'kh',
    'ц': 'ts',
    'ч': 'ch',
    'ш': 'sh',
    'щ': 'shch',
    'ъ': '',
    'ы': 'y',
    'ь': '',
    'э': 'e',
    'ю': 'yu',
    'я': 'ya',
    'і': 'i',
    'ї': 'i',
    'є': 'ye',
    'ґ': 'g',
    'ђ': 'dj',
    'ћ': 'c',
    'џ': 'dz',
    'љ': 'lj',
    'њ': 'nj',
    'ј': 'j',
    'ў': 'u',
}
_GREEK = {
    'α': 'a',
    'β': 'v',
    'γ': 'g',
    'δ': 'd',
    'ε': 'e',
    'ζ': 'z',
    'η': 'i',
    'θ': 'th',
    'ι': 'i',
    'κ': 'k',
    'λ': 'l',
    'μ': 'm',
    'ν': 'n',
    'ξ': 'x',
    'ο': 'o',
    'π': 'p',
    'ρ': 'r',
    'σ': 's',
    'ς': 's',
    'τ': 't',
    'υ': 'y',
    'φ': 'f',
    'χ': 'ch',
    'ψ': 'ps',
    'ω': 'o',
}
_GREEK_DIGRAPHS = (('ου', 'ou'), ('αι', 'ai'), ('ει', 'ei'), ('οι', 'oi'), ('μπ', 'mp'), ('ντ', 'nt'))
_SPECIAL_LATIN = {
    'ß': 'ss',
    'æ': 'ae',
    'œ': 'oe',
    'ø': 'o',
    'ł': 'l',
    'đ': 'd',
    'ð': 'd',
    'þ': 'th',
    'ı': 'i',
    'ħ': 'h',
    'ŀ': 'l',
    'ŧ': 't',
    'ĸ': 'k',
}
_TRANSLATE = {}
for _table in (_CYRILLIC, _GREEK, _SPECIAL_LATIN):
    for _k, _v in _table.items():
        _TRANSLATE[ord(_k)] = _v

_TITLES = frozenset(
    (
        'dr',
        'drs',
        'doc',
        'prof',
        'mr',
        'mrs',
        'ms',
        'miss',
        'mx',
        'mme',
        'mlle',
        'm',
        'herr',
        'frau',
        'sig',
        'sra',
        'srta',
        'dott',
        'ing',
        'mgr',
        'sir',
        'dame',
        'rev',
        'pan',
        'pani',
        'dipl',
        'med',
        'phd',
        'md',
        'dds',
        'dmd',
        'msc',
        'bsc',
    )
)
_GENERATIONAL = {
    'jr': 'jr',
    'junior': 'jr',
    'sr': 'sr',
    'senior': 'sr',
    'ii': 'ii',
    'iii': 'iii',
    'iv': 'iv',
    '2nd': 'ii',
    '3rd': 'iii',
    'fils': 'jr',
    'pere': 'sr',
    'jun': 'jr',
    'sen': 'sr',
}
_PARTICLES = frozenset(
    (
        'de',
        'del',
        'dell',
        'della',
        'delle',
        'dei',
        'degli',
        'dal',
        'dall',
        'dalla',
        'lo',
        'di',
        'da',
        'das',
        'do',
        'dos',
        'du',
        'la',
        'le',
        'van',
        'von',
        'der',
        'den',
        'ter',
        'ten',
        'zu',
        'af',
        'av',
        'bin',
        'ibn',
        'al',
        'el',
        'y',
        'st',
    )
)
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_APOSTROPHES = re.compile(r"['\u2019\u02bc`\u00b4]")


def _is_latin_like(ch):
    """True for characters of the Latin, Greek and Cyrillic blocks (below Hebrew)."""
    return ord(ch) < 0x0590


def normalize_text(value):
    """Fold case, strip accents, transliterate Cyrillic/Greek; keep other scripts as NFKC text.

    Punctuation becomes a space, apostrophes vanish. Returns a string of space-separated tokens.
    """
    if not value:
        return ''
    return _normalize(str(value))


@lru_cache(maxsize=1 << 16)
def _normalize(value):
    text = unicodedata.normalize('NFKC', value).casefold()
    for src, dst in _GREEK_DIGRAPHS:
        if src in text:
            text = text.replace(src, dst)
    # strip combining marks that sit on Latin/Greek/Cyrillic letters only (keep kana voicing marks)
    decomposed = unicodedata.normalize('NFKD', text)
    out = []
    prev_latin = True
    for ch in decomposed:
        if unicodedata.combining(ch):
            if prev_latin:
                continue
        else:
            prev_latin = _is_latin_like(ch)
        out.append(ch)
    text = unicodedata.normalize('NFC', ''.join(out)).translate(_TRANSLATE)
    text = _APOSTROPHES.sub('', text)
    return ' '.join(_NON_WORD.sub(' ', text).replace('_', ' ').split())


class ParsedName:
    """A normalised person name: family tokens, given tokens and a generational suffix."""

    __slots__ = (
        'alternatives',
        'family',
        'family_key',
        'given',
        'given_first',
        'given_key',
        'raw',
        'sort_key',
        'suffix',
    )

    def __init__(self, family, given, suffix, raw, alternatives=()):
        self.alternatives = tuple(alternatives)
        self.family = tuple(family)
        self.given = tuple(given)
        self.suffix = suffix
        self.family_key = ''.join(self.family)
        self.given_key = ''.join(self.given)
        self.given_first = self.given[0] if self.given else ''
        self.sort_key = (self.family_key + ' ' + self.given_key).strip()
        self.raw = raw

    def __repr__(self):
        return f'ParsedName(family={self.family!r}, given={self.given!r}, suffix={self.suffix!r})'

    def __eq__(self, other):
        return isinstance(other, ParsedName) and (self.family, self.given, self.suffix) == (
            other.family,
            other.given,
            other.suffix,
        )

    def __hash__(self):
        return hash((self.family, self.given, self.suffix))


def _clean_tokens(tokens):
    """Drop titles, pull out a generational suffix. Returns (tokens, suffix)."""
    kept = []
    suffix = ''
    for tok in tokens:
        if tok in _GENERATIONAL:
            suffix = _GENERATIONAL[tok]
        elif tok in _TITLES:
            continue
        else:
            kept.append(tok)
    return kept, suffix


def _pick_group(value):
    groups = str(value).split('=')
    for index in (0, 2, 1):
        if index < len(groups) and groups[index].strip(' ^'):
            return groups[index]
    return ''


def parse_person_name(value):
    """Parse a DICOM PN value (or free text) into a :class:`ParsedName`, or None when empty."""
    if value is None:
        return None
    raw = str(value)
    group = _pick_group(raw)
    if not group:
        return None
    if '^' in group:
        parts = group.split('^')
        family_raw = parts[0]
        given_raw = ' '.join(parts[1:3])
        extra = ' '.join(parts[3:5])
        family, suffix1 = _clean_tokens(normalize_text(family_raw).split())
        given, suffix2 = _clean_tokens(normalize_text(given_raw).split())
        _dummy, suffix3 = _clean_tokens(normalize_text(extra).split())
        suffix = suffix1 or suffix2 or suffix3
        if not family and given:
            family, given = given, []
    elif ',' in group:
        family_raw, _sep, given_raw = group.partition(',')
        family, suffix1 = _clean_tokens(normalize_text(family_raw).split())
        given, suffix2 = _clean_tokens(normalize_text(given_raw).split())
        suffix = suffix1 or suffix2
        if not family and given:
            family, given = given, []
    else:
        tokens, suffix = _clean_tokens(normalize_text(group).split())
        if not tokens:
            return None
        # free text: family name last, with the particles in front of it; the other splits are kept as
        # alternatives (``LOMBARDI MARIA GRAZIA`` may be family first), tried when two names are compared
        cut = len(tokens) - 1
        while cut > 1 and tokens[cut - 1] in _PARTICLES:
            cut -= 1
        family, given = tokens[cut:], tokens[:cut]
        alternatives = [
            ParsedName(fam, giv, suffix, raw) for fam, giv in _free_text_splits(tokens) if (fam, giv) != (family, given)
        ]
        return ParsedName(family, given, suffix, raw, alternatives)
    if not family:
        return None
    return ParsedName(family, given, suffix, raw)


def _free_text_splits(tokens):
    """Every family/given split of free-text tokens: family first or last, one unit or more, where a unit is
    a token with the particles in front of it (``di stefano``, ``de la cruz`` are never cut)."""
    units = []
    pending = []
    for tok in tokens:
        pending.append(tok)
        if tok not in _PARTICLES:
            units.append(pending)
            pending = []
    if pending:
        if units:
            units[-1] = units[-1] + pending
        else:
            units.append(pending)
    out = []
    for k in range(1, len(units)):
        head = [t for u in units[:k] for t in u]
        tail = [t for u in units[k:] for t in u]
        for split in ((tuple(head), tuple(tail)), (tuple(tail), tuple(head))):
            if split not in out:
                out.append(split)
    return out


# ---------------------------------------------------------------------------------------------
# String similarity and phonetics
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 17)
def jaro_winkler(s1, s2, prefix_scale=0.1):
    """Jaro-Winkler similarity in [0, 1] (1 = equal). Works on any Unicode text."""
    if s1 == s2:
        return 1.0
    len1, len2 = len(s1), len(s2)
    if not len1 or not len2:
        return 0.0
    match_distance = max(len1, len2) // 2 - 1
    if match_distance < 0:
        match_distance = 0
    flags1 = [False] * len1
    flags2 = [False] * len2
    matches = 0
    for i in range(len1):
        ch = s1[i]
        lo = i - match_distance if i > match_distance else 0
        hi = i + match_distance + 1
        if hi > len2:
            hi = len2
        for j in range(lo, hi):
            if not flags2[j] and s2[j] == ch:
                flags1[i] = flags2[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    transpositions = 0
    k = 0
    for i in range(len1):
        if flags1[i]:
            while not flags2[k]:
                k += 1
            if s1[i] != s2[k]:
                transpositions += 1
            k += 1
    m = float(matches)
    jaro = (m / len1 + m / len2 + (m - transpositions / 2.0) / m) / 3.0
    prefix = 0
    for a, b in zip(s1[:4], s2[:4], strict=False):
        if a != b:
            break
        prefix += 1
    return jaro + prefix * prefix_scale * (1.0 - jaro)


def damerau_levenshtein(s1, s2):
    """Edit distance with adjacent transpositions (optimal string alignment variant)."""
    if s1 == s2:
        return 0
    len1, len2 = len(s1), len(s2)
    if not len1:
        return len2
    if not len2:
        return len1
    prev2 = None
    prev = list(range(len2 + 1))
    for i in range(1, len1 + 1):
        cur = [i] + [0] * len2
        for j in range(1, len2 + 1):
            cost = 0 if s1[i - 1] == s2[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and s1[i - 1] == s2[j - 2] and s1[i - 2] == s2[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len2]


_SOUNDEX_CLASS = {}
for _letters, _code in (
    ('bfpv', '1'),
    ('cgjkqsxz', '2'),
    ('dt', '3'),
    ('l', '4'),
    ('mn', '5'),
    ('r', '6'),
    ('aeiouy', '0'),
    ('hw', ''),
):
    for _ch in _letters:
        _SOUNDEX_CLASS[_ch] = _code
_PHONETIC_REWRITES = (
    ('sch', 's'),
    ('ph', 'f'),
    ('ck', 'k'),
    ('qu', 'k'),
    ('th', 't'),
    ('sz', 's'),
    ('cz', 'c'),
    ('w', 'v'),
    ('dzh', 'j'),
    ('kh', 'k'),
)


@lru_cache(maxsize=1 << 16)
def phonetic_key(token, length=4):
    """Soundex-like key that also codes the first letter; non-Latin text keeps its first letters."""
    if not token:
        return ''
    if not token.isascii() or not token.isalpha():
        letters = ''.join(ch for ch in token if ch.isalpha())
        if letters.isascii():
            token = letters
            if not token:
                return ''
        else:
            return '~' + letters[:3]
    for src, dst in _PHONETIC_REWRITES:
        if src in token:
            token = token.replace(src, dst)
    codes = []
    last = None
    for index, ch in enumerate(token):
        code = _SOUNDEX_CLASS.get(ch, '')
        if code == '':
            continue  # h, w: do not separate equal codes
        if code == '0':
            if index == 0:
                codes.append('0')
            last = '0'
            continue
        if code != last:
            codes.append(code)
        last = code
        if len(codes) >= length:
            break
    return ''.join(codes)


# ---------------------------------------------------------------------------------------------
# Birth dates
# ---------------------------------------------------------------------------------------------

_DATE_DIGITS = re.compile(r'^\s*(\d{4})[-./]?(\d{2})?[-./]?(\d{2})?\s*$')
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _valid(year, month, day):
    return 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1] and year > 0


def parse_birth_date(value, placeholders=None):
    """Return ``(year, month, day)`` with None for unknown parts, or None when unknown or invalid.

    ``'19490301'`` -> (1949, 3, 1); ``'194903'`` -> (1949, 3, None); ``'1949'`` -> (1949, None, None).
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if placeholders is None:
        placeholders = DEFAULT_CONFIG['placeholder_dates']
    match = _DATE_DIGITS.match(text)
    if not match:
        return None
    if match.group(1) + (match.group(2) or '') + (match.group(3) or '') in placeholders:
        return None
    year = int(match.group(1))
    if year < 1850 or year > 2200:
        return None
    month = int(match.group(2)) if match.group(2) else None
    day = int(match.group(3)) if match.group(3) else None
    if month is not None and not 1 <= month <= 12:
        return None
    if day is not None and (month is None or not _valid(year, month, day)):
        return None
    return (year, month, day)


def _fmt_date(date):
    year, month, day = date
    if month is None:
        return f'{year:04d}'
    if day is None:
        return f'{year:04d}-{month:02d}'
    return f'{year:04d}-{month:02d}-{day:02d}'


def compare_birth_dates(d1, d2):
    """Compare two parsed birth dates. Returns ``(score, reason, conflict)``; score None if unknown."""
    if d1 is None or d2 is None:
        return None, None, False
    if d1 == d2:
        if d1[2] is not None:
            return 1.0, 'same birth date', False
        if d1[1] is not None:
            return 0.9, 'same birth year and month (day unknown)', False
        return 0.85, 'same birth year (month and day unknown)', False
    (y1, m1, a1), (y2, m2, a2) = d1, d2
    if a1 is None or a2 is None:
        # at least one partial date: compatible when the known parts agree
        if y1 == y2 and (m1 is None or m2 is None or m1 == m2):
            if m1 is not None and m2 is not None:
                return 0.9, f'birth dates agree as far as known ({_fmt_date(d1)}, {_fmt_date(d2)})', False
            return 0.85, f'birth dates agree as far as known ({_fmt_date(d1)}, {_fmt_date(d2)})', False
        return 0.0, f'birth dates differ ({_fmt_date(d1)} vs {_fmt_date(d2)})', True
    if y1 == y2 and m1 == a2 and a1 == m2:
        return 0.9, f'day/month swap in birth date ({_fmt_date(d1)} vs {_fmt_date(d2)})', False
    if abs(y1 - y2) == 1 and (m1, a1) == (m2, a2):
        return 0.8, f'birth year off by one ({_fmt_date(d1)} vs {_fmt_date(d2)})', False
    s1 = '{:04d}{:02d}{:02d}'.format(*d1)
    s2 = '{:04d}{:02d}{:02d}'.format(*d2)
    diff = [i for i in range(8) if s1[i] != s2[i]]
    if len(diff) == 1:
        if diff[0] >= 3:
            return 0.85, f'one-digit typo in birth date ({_fmt_date(d1)} vs {_fmt_date(d2)})', False
        return 0.3, f'birth years differ by one digit ({_fmt_date(d1)} vs {_fmt_date(d2)})', False
    if len(diff) == 2 and diff[1] == diff[0] + 1 and s1[diff[0]] == s2[diff[1]] and s1[diff[1]] == s2[diff[0]]:
        if diff[0] >= 3 or abs(y1 - y2) <= 9:
            return 0.85, f'transposed digits in birth date ({_fmt_date(d1)} vs {_fmt_date(d2)})', False
        return 0.3, f'transposed digits in birth year ({_fmt_date(d1)} vs {_fmt_date(d2)})', False
    return 0.0, f'birth dates differ ({_fmt_date(d1)} vs {_fmt_date(d2)})', True


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


_FOLDS = (('ue', 'u'), ('oe', 'o'), ('ae', 'a'), ('ss', 's'), ('ph', 'f'), ('th', 't'), ('y', 'i'), ('h', ''))


@lru_cache(maxsize=1 << 16)
def _folded(token):
    """A token with German umlaut transcriptions and common spelling doublets folded (``mueller`` = ``muller``,
    ``hussein`` = ``husein``), used only to recognise two spellings of one name."""
    for src, dst in _FOLDS:
        if src in token:
            token = token.replace(src, dst)
    out = []
    for ch in token:
        if not out or out[-1] != ch:
            out.append(ch)
    return ''.join(out)


# Chinese names: pinyin (mainland), Wade-Giles (Taiwan, older passports) and the Cantonese spellings of Hong Kong
# write one syllable several ways (``Xiuying``/``Hsiu-Ying``, ``Zhiwei``/``Chih-Wei``, ``Guo``/``Kuo``). A name that
# reads as a run of Chinese syllables is folded: the Wade-Giles finals to pinyin, then the initials that the two
# systems write differently to one class (Wade-Giles writes pinyin's b/p, d/t, g/k, zh/ch/j/q, z/c with and without an
# apostrophe, which records drop).
_ZH_SYLLABLE = re.compile(
    r'^(?:(?:ssu|szu|tzu|tsu|(?:zh|ch|sh|hs|ts|tz|hw|kw|[bpmfdtnlgkhjqxrzcsyw])?'
    r'(?:iang|iong|iung|uang|ueng|ang|eng|ing|ong|ung|iao|ian|ien|ieh|uai|uan|uei|ueh|ai|ei|ao|ou|an|en|in|un|'
    r'ih|ia|ie|iu|ua|uo|ui|ue|a|o|e|i|u))|erh|er|ng)+$'
)
_ZH_FINALS = (
    ('hs', 'x'),
    ('shih', 'shi'),
    ('chih', 'zhi'),
    ('jih', 'ri'),
    ('tzu', 'zi'),
    ('tsu', 'zi'),
    ('ssu', 'si'),
    ('szu', 'si'),
    ('yen', 'yan'),
    ('ieh', 'ie'),
    ('ien', 'ian'),
    ('ueh', 'ue'),
    ('uei', 'ui'),
    ('erh', 'er'),
    ('iung', 'iong'),
    ('ung', 'ong'),
)
_ZH_INITIALS = re.compile(r'zh|ch|ts|tz|[jqzcgkbpdt]|(?<=[^aeiou])wei')
_ZH_CLASS = {'zh': 'C', 'ch': 'C', 'j': 'C', 'q': 'C', 'ts': 'Z', 'tz': 'Z', 'z': 'Z', 'c': 'Z', 'g': 'K', 'k': 'K'}
_ZH_CLASS.update({'b': 'P', 'p': 'P', 'd': 'T', 't': 'T', 'wei': 'ui'})
# Hong Kong (Cantonese) spellings of common Chinese surnames, against their pinyin
_CANTONESE_SURNAMES = {
    'wang': ('wong',), 'huang': ('wong',), 'li': ('lee', 'lei'), 'chen': ('chan',), 'zhang': ('cheung',),
    'liu': ('lau',), 'yang': ('yeung',), 'zhao': ('chiu',), 'wu': ('ng', 'woo'), 'zhou': ('chow', 'chau'),
    'xu': ('hui', 'tsui'), 'sun': ('suen',), 'zhu': ('chu',), 'gao': ('ko',), 'lin': ('lam',), 'he': ('ho',),
    'guo': ('kwok',), 'ma': ('mah',), 'luo': ('lo', 'law'), 'zheng': ('cheng',), 'xie': ('tse',),
    'liang': ('leung',), 'song': ('sung',), 'tang': ('tong',), 'han': ('hon',), 'feng': ('fung',),
    'deng': ('tang',), 'cao': ('tso',), 'peng': ('pang',), 'zeng': ('tsang',), 'xiao': ('siu',),
    'tian': ('tin',), 'dong': ('tung',), 'pan': ('poon',), 'yuan': ('yuen',), 'cai': ('choi', 'tsoi'),
    'jiang': ('keung', 'kong'), 'yu': ('yue', 'yee'), 'du': ('to',), 'ye': ('yip',), 'cheng': ('ching',),
    'wei': ('ngai',), 'su': ('so',), 'lu': ('lo', 'luk'), 'ding': ('ting',), 'shen': ('shum', 'sum'),
    'ren': ('yam',), 'yao': ('yiu',), 'tan': ('tam',), 'zou': ('chau',), 'xiong': ('hung',), 'jin': ('kam',),
    'qiu': ('yau',), 'mai': ('mak',), 'mo': ('mok',), 'fang': ('fong',), 'yan': ('yim',), 'qian': ('chin',),
}  # fmt: skip
_CANTONESE = {}
for _pinyin, _spellings in _CANTONESE_SURNAMES.items():
    for _spelling in _spellings:
        _CANTONESE.setdefault(_spelling, set()).add(_pinyin)


@lru_cache(maxsize=1 << 16)
def _reads_chinese(token):
    return token.isascii() and 0 < len(token) <= 12 and bool(_ZH_SYLLABLE.match(token))


@lru_cache(maxsize=1 << 16)
def _romanised(token):
    """A Chinese name's token folded over pinyin and Wade-Giles (see above)."""
    for src, dst in _ZH_FINALS:
        if src in token:
            token = token.replace(src, dst)
    token = _ZH_INITIALS.sub(lambda m: _ZH_CLASS[m.group(0)], token)
    # Wade-Giles ``ko``/``ho`` is pinyin ``ge``/``he`` (``kuo`` stays ``guo``)
    return re.sub(r'(?<=[Kh])o(?!ng|u)', 'e', token)


def _same_chinese_name(x, y, a, b):
    """True when two tokens (or joined keys) of names that read as Chinese throughout are one name in two
    romanisations, or one surname in pinyin and in its Cantonese spelling (``Huang``/``Wong``)."""
    if x == y or not (_reads_chinese_name(a) and _reads_chinese_name(b)):
        return False
    if x in _CANTONESE.get(y, ()) or y in _CANTONESE.get(x, ()):
        return True
    return _reads_chinese(x) and _reads_chinese(y) and _romanised(x) == _romanised(y)


def _reads_chinese_name(pn):
    return all(_reads_chinese(tok) or tok in _CANTONESE for tok in (*pn.family, *pn.given))


# Given names and their everyday short forms (hypocorisms), in the languages of the clinics we serve first:
# the short form is not a typo of the name and shares few letters with it (``Pepe`` for ``José``).
_NICKNAMES = {
    # Spanish
    'jose': ('pepe', 'pepito', 'chema'), 'josemaria': ('chema',), 'francisco': ('paco', 'pancho', 'curro', 'fran'),
    'manuel': ('manolo', 'manu', 'lolo'), 'dolores': ('lola', 'loli'), 'concepcion': ('concha', 'conchi', 'chon'),
    'josefa': ('pepa', 'pepi'), 'jesus': ('chus', 'chuy', 'chucho'), 'ignacio': ('nacho', 'inaki'),
    'enrique': ('quique',), 'antonio': ('toni', 'tono', 'tonio', 'tonino', 'toto'), 'francisca': ('paqui', 'paca'),
    'rosario': ('charo',), 'mercedes': ('merche',), 'guillermo': ('guille', 'memo'), 'alejandro': ('alex', 'ale'),
    'isabel': ('isa', 'chabela'), 'consuelo': ('chelo',), 'asuncion': ('asun',), 'soledad': ('sole',),
    'inmaculada': ('inma',), 'montserrat': ('montse',), 'ramon': ('moncho',), 'eduardo': ('edu',),
    'jorge': ('coque',), 'rafael': ('rafa',), 'santiago': ('santi', 'yago'), 'fernando': ('nando',),
    'gregorio': ('goyo',), 'socorro': ('coco',), 'luis': ('lucho',), 'pilar': ('pili',), 'encarnacion': ('encarna',),
    # Portuguese
    'joao': ('joaozinho',), 'maria': ('mariazinha',), 'raimundo': ('mundo',),
    # Italian
    'giuseppe': ('beppe', 'peppe', 'pino', 'peppino', 'geppetto'), 'giuseppina': ('pina', 'peppina'),
    'giovanni': ('gianni', 'nanni', 'vanni'), 'francesco': ('franco', 'checco', 'cecco'),
    'salvatore': ('toto', 'turi', 'rino'), 'vincenzo': ('enzo',), 'alessandro': ('sandro',),
    'alessandra': ('sandra',), 'domenico': ('mimmo',), 'gaetano': ('tano',), 'luigi': ('gino',),
    'massimiliano': ('max', 'massimo'), 'francesca': ('franca', 'cesca'), 'margherita': ('rita',),
    'caterina': ('rina',), 'giacomo': ('mino',), 'gianfranco': ('franco',), 'nicola': ('nico',),
    'carmela': ('melina', 'lina'), 'raffaele': ('lello',), 'emanuele': ('lele',), 'gabriele': ('lele',),
    'filippo': ('pippo',), 'federico': ('fede',), 'leonardo': ('leo',), 'benedetto': ('betto',),
    # German
    'johannes': ('hans', 'hannes'), 'johann': ('hans',), 'elisabeth': ('lisa', 'liesel', 'elise', 'sissi'),
    'katharina': ('kathe', 'kathi', 'katja'), 'margarete': ('grete', 'gretel'), 'josef': ('sepp', 'seppl'),
    'friedrich': ('fritz',), 'heinrich': ('heinz', 'heini'), 'wolfgang': ('wolf',), 'christoph': ('chris',),
    # English
    'william': ('bill', 'will', 'billy'), 'robert': ('bob', 'rob', 'bobby'), 'richard': ('dick', 'rick'),
    'margaret': ('peggy', 'maggie', 'meg'), 'elizabeth': ('liz', 'beth', 'betty'), 'james': ('jim', 'jimmy'),
    'edward': ('ted', 'ed', 'eddie'), 'charles': ('chuck', 'charlie'), 'catherine': ('kate', 'cathy'),
}  # fmt: skip


def _nickname(x, y):
    """True when one given name is an everyday short form of the other (``Pepe``/``José``, ``Beppe``/``Giuseppe``)."""
    return x in _NICKNAMES.get(y, ()) or y in _NICKNAMES.get(x, ())


def _distinct_names(x, y, cfg, kind):
    """True when two similar-looking names are both established in this clinic (each seen in at least
    ``distinct_name_count`` records) and do not sound alike: two real names (``Marco``/``Mario``,
    ``Carbone``/``Caruso``), not a typo of one (a typo makes a rare spelling)."""
    freq = cfg.get('_freq')
    if freq is None:
        return False
    counts = freq.family if kind == 'family' else freq.given
    low = cfg['distinct_name_count']
    cx, cy = counts.get(x, 0), counts.get(y, 0)
    if min(cx, cy) < max(low, 0.02 * max(cx, cy)):
        # one of them is rare, or rare next to the other: typos of a name common here (``GARIA`` three times
        # beside ``GARCIA`` two hundred times) are that frequent too
        return False
    return phonetic_key(x) != phonetic_key(y) and _folded(x) != _folded(y)


def _family_similarity(a, b, cfg=None):
    """Similarity of two family names (ParsedName). Returns (score, note)."""
    if a.family_key == b.family_key:
        return 1.0, None
    if _folded(a.family_key) == _folded(b.family_key):
        return 0.97, 'family name spelling variant'
    if _same_chinese_name(a.family_key, b.family_key, a, b):
        return 0.93, 'family name in another romanisation'
    score = jaro_winkler(a.family_key, b.family_key)
    if len(a.family) > 1 or len(b.family) > 1:
        common = set(a.family) & set(b.family)
        if _other_surnames_differ(a.family, b.family, common):
            return min(score, 0.75), 'one of two surnames differs'
        # a shared surname settles it, however similar the whole keys look (a high Jaro-Winkler of ``VELASCO`` and
        # ``VELASCOMOYA`` must not fall through to the two-different-surnames rule below)
        if any(len(tok) > 2 and tok not in _PARTICLES for tok in common):
            return max(score, 0.92), 'partial surname'
        if _typo_in_shared_surname(a.family, b.family):
            return max(score, 0.9), 'partial surname with a typo'
    if cfg is not None and _distinct_names(a.family_key, b.family_key, cfg, 'family'):
        return min(score, 0.5), 'two different surnames, both common here'
    if score < 0.9 and _sounds_alike(a.family_key, b.family_key):
        return 0.9, 'family names sound alike (another transliteration)'
    return score, None


def _other_surnames_differ(fa, fb, common):
    """True when both records carry two surnames or more, share one and differ in another, not by a typo or a
    spelling (``LOZANO GARCIA`` / ``GARCIA MARQUEZ``, ``RODRIGUEZ PEREZ`` / ``RODRIGUEZ ETXEBERRIA``): where two
    surnames are given, the second is the other parent's, so a different one is another person (a cousin, or a
    namesake); a dropped surname (one record with one) is not this."""
    sa = [t for t in fa if len(t) > 2 and t not in _PARTICLES]
    sb = [t for t in fb if len(t) > 2 and t not in _PARTICLES]
    if len(sa) < 2 or len(sb) < 2 or not common:
        return False
    rest_a = [t for t in sa if t not in common]
    rest_b = [t for t in sb if t not in common]
    if not rest_a or not rest_b:
        return False
    for x in rest_a:
        for y in rest_b:
            if _folded(x) == _folded(y) or jaro_winkler(x, y) >= 0.85 or damerau_levenshtein(x, y) <= 2:
                return False
    return True


def _typo_in_shared_surname(fa, fb):
    """True when one surname of a compound family name is the other record's surname (or one of its surnames) with
    one typo (``GONZALEZ`` in ``GONAEZ FERRER``): a dropped second surname and a typo in the first, both frequent."""
    for x in fa:
        if len(x) < 4 or x in _PARTICLES:
            continue
        for y in fb:
            if len(y) < 4 or y in _PARTICLES or x[0] != y[0] or abs(len(x) - len(y)) > 2:
                continue
            if _folded(x) == _folded(y):
                return True
            # one edit; two in long surnames that start alike (two-edit typos are about one in six)
            edits = damerau_levenshtein(x, y)
            if edits <= 1 or (edits == 2 and min(len(x), len(y)) >= 6 and x[:2] == y[:2]):
                return True
    return False


def _sounds_alike(x, y):
    """Two spellings of one sound (``Zhang``/``Chang``, ``Xu``/``Hsu``, ``Mohammed``/``Muhammad``): the same phonetic
    key and first letters that the phonetic classes also equate; for Latin letters only."""
    if not (x.isascii() and y.isascii()) or len(x) < 2 or len(y) < 2:
        return False
    return (
        phonetic_key(x) == phonetic_key(y)
        and abs(len(x) - len(y)) <= 3
        and x[0] not in 'aeiouh'
        and y[0] not in 'aeiouh'
    )


def _given_similarity(a, b, cfg=None):
    """Similarity of two given names; None when one is missing. Returns (score, note)."""
    if not a.given or not b.given:
        return None, None
    if a.given_first == b.given_first or a.given_key == b.given_key:
        return 1.0, None
    fa, fb = a.given_first, b.given_first
    if (len(fa) == 1 or len(fb) == 1) and fa[0] == fb[0]:
        return 0.85, 'given name initial'
    if _folded(fa) == _folded(fb) or _folded(a.given_key) == _folded(b.given_key):
        return 0.97, 'given name spelling variant'
    if _same_chinese_name(a.given_key, b.given_key, a, b) or _same_chinese_name(fa, fb, a, b):
        return 0.93, 'given name in another romanisation'
    if _nickname(fa, fb) or _nickname(a.given_key, b.given_key):
        return 0.9, 'given name and its short form'
    short, full = sorted((a.given, b.given), key=len)
    if len(full) > len(short) and all(tok in full for tok in short) and any(len(tok) > 2 for tok in short):
        # one record has the whole compound given name, the other the part the patient goes by
        # (``MARIA ROSARIA``/``ROSARIA``, ``MARÍA DEL CARMEN``/``CARMEN``)
        return 0.92, 'part of a compound given name'
    score = max(jaro_winkler(fa, fb), jaro_winkler(a.given_key, b.given_key))
    if cfg is not None and _distinct_names(fa, fb, cfg, 'given'):
        return min(score, 0.5), 'two different given names, both common here'
    low = (cfg or DEFAULT_CONFIG)['given_min']
    # one slip in a short name, which Jaro-Winkler scores low (``UEW``/``UWE``): two letters swapped, or, where this
    # clinic's records show one spelling to be rare (a typo), any one letter; without frequencies a letter for
    # another is not taken, in a short name it often makes another name (``DINO``/``TINO``)
    if (
        score < low
        and len(fa) >= 3
        and damerau_levenshtein(fa, fb) == 1
        and (sorted(fa) == sorted(fb) or (cfg is not None and cfg.get('_freq') is not None))
    ):
        return low, 'given name typo (one slip)'
    if score < 0.9 and fa[0] == fb[0] and _sounds_alike(fa, fb):
        return 0.9, 'given names sound alike (another transliteration)'
    return score, None


def _spelling_similarity(x, y, a, b):
    """0.97 for two spellings of one name (umlaut transcriptions, doublets), 0.93 for one Chinese name in two
    romanisations, else 0."""
    if not x or not y:
        return 0.0
    if _folded(x) == _folded(y):
        return 0.97
    if _same_chinese_name(x, y, a, b):
        return 0.93
    return 0.0


def _given_vs_family(given_of, family_of):
    """For the swapped order: the whole given name of one record against the family name of the other (its first
    word alone only when it is the whole given name: ``Carbone Anna`` is not ``Caruso``)."""
    if not given_of.given:
        return 0.0
    return jaro_winkler(given_of.given_key, family_of.family_key)


def compare_names(a, b, cfg=None):
    """Compare two ParsedName. Returns a dict: score, reasons, family_conflict, given_conflict, suffix_conflict.

    A free-text name (no ``^``, no comma) is tried in each of its family/given splits; the best split that is
    not a conflict wins (reason ``free-text name read as FAMILY^GIVEN``).
    """
    cfg = cfg or DEFAULT_CONFIG
    best = _compare_names_once(a, b, cfg)
    if not (a.alternatives or b.alternatives):
        return best
    for xa in (a, *a.alternatives):
        for xb in (b, *b.alternatives):
            if xa is a and xb is b:
                continue
            res = _compare_names_once(xa, xb, cfg)
            if _name_key(res) > _name_key(best):
                for x, orig in ((xa, a), (xb, b)):
                    if x is not orig:
                        res['reasons'].append(
                            'free-text name read as {}^{}'.format(' '.join(x.family).upper(), ' '.join(x.given).upper())
                        )
                best = res
    return best


def _name_key(res):
    return (not (res['family_conflict'] or res['given_conflict'] or res['suffix_conflict']), res['score'])


def _compare_names_once(a, b, cfg):
    fam_min, giv_min = cfg['family_min'], cfg['given_min']
    reasons = []
    fam, fam_note = _family_similarity(a, b, cfg)
    giv, giv_note = _given_similarity(a, b, cfg)
    swapped = False
    if a.given and b.given and (fam < fam_min or (giv is not None and giv < giv_min)):
        # the fields swapped: each side's family name against the other's given name, by Jaro-Winkler or as one
        # name in two spellings (umlauts, romanisations: ``Wei Wong`` against ``HUANG^WEI``); the surname rules of
        # compound names are not applied across the fields
        fam_s = max(_given_vs_family(b, a), _spelling_similarity(b.given_key, a.family_key, a, b))
        giv_s = max(_given_vs_family(a, b), _spelling_similarity(a.given_key, b.family_key, a, b))
        if min(fam_s, giv_s) > min(fam, giv) and (fam_s + giv_s) > (fam + giv):
            fam, giv, swapped = fam_s, giv_s, True
            fam_note = giv_note = None
    family_conflict = fam < fam_min
    given_conflict = giv is not None and giv < giv_min
    score = (fam * 0.85 if a.given or b.given else fam) if giv is None else (fam + giv) / 2.0
    if swapped:
        reasons.append('name order swapped')
    if family_conflict:
        reasons.append(fam_note or f'different family names (jaro-winkler {fam:.2f})')
    elif fam_note:
        reasons.append(fam_note)
    elif fam < 1.0:
        reasons.append(f'family name typo (jaro-winkler {fam:.2f})')
    if giv is None:
        if a.given or b.given:
            reasons.append('given name missing on one record')
    elif given_conflict:
        reasons.append(f'different given names (jaro-winkler {giv:.2f})')
    elif giv_note:
        reasons.append(giv_note)
    elif giv < 1.0:
        reasons.append(f'given name typo (jaro-winkler {giv:.2f})')
    if not swapped and fam == 1.0 and (giv == 1.0 or (giv is None and not a.given and not b.given)):
        reasons.insert(0, 'same name')
    suffix_conflict = bool(a.suffix and b.suffix and a.suffix != b.suffix)
    if suffix_conflict:
        reasons.append(f'different name suffixes ({a.suffix} vs {b.suffix})')
    return {
        'score': score,
        'reasons': reasons,
        'family_conflict': family_conflict,
        'given_conflict': given_conflict,
        'suffix_conflict': suffix_conflict,
        # the readings compared (a free-text name's family/given split that won): the name frequencies are
        # looked up for these, not for the first reading
        'names': (a, ParsedName(b.given, b.family, b.suffix, b.raw)) if swapped else (a, b),
    }


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------

_SEXES = {'M': 'M', 'F': 'F', 'O': 'O', 'MALE': 'M', 'FEMALE': 'F'}


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        out = []
        for item in value:
            out.extend(_as_list(item))
        return out
    text = str(value)
    if '\\' in text:
        return [part for part in text.split('\\') if part.strip()]
    return [text] if text.strip() else []


def _unique(values):
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


class PatientRecord:
    """One PatientID with everything observed for it (possibly several names from its studies).

    ``names`` may be a list of ``(name, study_instance_uid)`` tuples or plain names; the study UID
    lets :func:`find_collisions` tell a name edited inside one study from two people on one ID.
    """

    __slots__ = (
        'birth_dates',
        'id_set',
        'institutions',
        'issuers',
        'name_studies',
        'names',
        'other_ids',
        'parsed_dates',
        'parsed_names',
        'patient_id',
        'sex',
        'sexes',
        'stations',
        'study_dates',
        'study_uids',
    )

    def __init__(
        self,
        patient_id,
        names=(),
        birth_dates=(),
        sexes=(),
        other_ids=(),
        study_dates=(),
        institutions=(),
        study_uids=(),
        placeholders=None,
        issuers=(),
        stations=(),
    ):
        self.patient_id = '' if patient_id is None else str(patient_id)
        self.name_studies = {}
        plain = []
        for item in names if isinstance(names, (list, tuple)) else [names]:
            if isinstance(item, tuple):
                name, uid = item
            else:
                name, uid = item, None
            if name is None or not str(name).strip():
                continue
            name = str(name)
            plain.append(name)
            if uid:
                self.name_studies.setdefault(name, set()).add(str(uid))
        self.names = _unique(plain)
        self.birth_dates = _unique(str(d).strip() for d in _as_list(birth_dates))
        self.sexes = _unique(str(s).strip().upper() for s in _as_list(sexes))
        self.other_ids = _unique(i.strip() for i in _as_list(other_ids) if i.strip() != self.patient_id)
        self.study_dates = _unique(str(d).strip() for d in _as_list(study_dates))
        self.institutions = [i for i in _unique(normalize_text(i) for i in _as_list(institutions)) if i]
        self.study_uids = _unique(str(u).strip() for u in _as_list(study_uids))
        self.issuers = _unique(str(i).strip() for i in _as_list(issuers))
        self.stations = [i for i in _unique(normalize_text(i) for i in _as_list(stations)) if i]
        for uids in self.name_studies.values():
            for uid in sorted(uids):
                if uid not in self.study_uids:
                    self.study_uids.append(uid)
        parsed = []
        for name in self.names:
            pn = parse_person_name(name)
            if pn is not None and pn not in parsed:
                parsed.append(pn)
        self.parsed_names = parsed
        dates = []
        for value in self.birth_dates:
            date = parse_birth_date(value, placeholders)
            if date is not None and date not in dates:
                dates.append(date)
        self.parsed_dates = dates
        known = sorted({_SEXES[s] for s in self.sexes if s in _SEXES})
        self.sex = known[0] if len(known) == 1 else None
        self.id_set = frozenset([self.patient_id, *self.other_ids])

    def __repr__(self):
        return f'PatientRecord({self.patient_id!r}, names={self.names!r}, birth_dates={self.birth_dates!r})'

    def has_full_date(self):
        return any(d[2] is not None for d in self.parsed_dates)


def records_from_observations(observations, placeholders=None):
    """Group flat observations (dicts keyed by DICOM keywords) by PatientID into PatientRecords.

    Recognised keys: PatientID, PatientName, PatientBirthDate, PatientSex, OtherPatientIDs (list or
    backslash-separated), StudyDate, InstitutionName, StudyInstanceUID, and where the source has them
    IssuerOfPatientID and StationName. Values may be lists.
    Records come back sorted by PatientID.
    """
    grouped = {}
    for obs in observations:
        pid = obs.get('PatientID')
        pid = '' if pid is None else str(pid).strip()
        entry = grouped.setdefault(
            pid,
            {
                'names': [],
                'dates': [],
                'sexes': [],
                'other': [],
                'sdates': [],
                'inst': [],
                'uids': [],
                'issuers': [],
                'stations': [],
            },
        )
        uids = _as_list(obs.get('StudyInstanceUID'))
        uid = uids[0] if uids else None
        for name in _as_list(obs.get('PatientName')):
            entry['names'].append((name, uid))
        entry['dates'].extend(_as_list(obs.get('PatientBirthDate')))
        entry['sexes'].extend(_as_list(obs.get('PatientSex')))
        entry['other'].extend(_as_list(obs.get('OtherPatientIDs')))
        entry['sdates'].extend(_as_list(obs.get('StudyDate')))
        entry['inst'].extend(_as_list(obs.get('InstitutionName')))
        entry['uids'].extend(uids)
        entry['issuers'].extend(_as_list(obs.get('IssuerOfPatientID')))
        entry['stations'].extend(_as_list(obs.get('StationName')))
    return [
        PatientRecord(
            pid,
            e['names'],
            e['dates'],
            e['sexes'],
            e['other'],
            e['sdates'],
            e['inst'],
            e['uids'],
            placeholders=placeholders,
            issuers=e['issuers'],
            stations=e['stations'],
        )
        for pid, e in sorted(grouped.items())
    ]


# ---------------------------------------------------------------------------------------------
# Frequencies and Fellegi-Sunter parameters, from the clinic's own records
# ---------------------------------------------------------------------------------------------


class NameFrequencies:
    """How common each family name, given name, birth date and study date is among ``records``.

    Counts are of records (a record counts once per value); name tokens are also counted whatever their role (a
    given name written as the family name still counts as that name). The u-probability of an agreement on a
    value (the chance that two different people share it) follows from the count; a pair's own two records are
    left out.
    """

    __slots__ = ('_clusters', '_people', 'birth_date', 'family', 'full', 'given', 'n', 'study_date', 'tokens')

    def __init__(self, records, max_names=4):
        self.n = len(records)
        self.family = {}
        self.given = {}
        self.birth_date = {}
        self.study_date = {}
        self.full = {}
        self.tokens = {}
        self._clusters = {}
        self._people = {}
        for record in records:
            fams = set()
            givs = set()
            fulls = set()
            dates = {(d, record.sex) for d in record.parsed_dates}
            for pn in record.parsed_names[:max_names]:
                for x in (pn, *pn.alternatives):
                    fams.add(x.family_key)
                    if x.given:
                        givs.add(x.given_first)
                        givs.add(x.given_key)  # a compound given name (``maria carmen``) counts as itself too
                        fulls.add(_full_key(x))
            for table, values in (
                (self.family, fams),
                (self.given, givs),
                (self.tokens, fams | givs),
                (self.birth_date, set(record.parsed_dates)),
                (self.study_date, set(record.study_dates)),
            ):
                for value in values:
                    table[value] = table.get(value, 0) + 1
            for value in fulls:
                self.full.setdefault(value, set()).update(dates)

    def others(self, table, x, y):
        """Records other than the pair's own that carry ``x`` or ``y`` (the commoner of the two spellings)."""
        count = max(table.get(x, 0), table.get(y, 0))
        return max(count - (2 if x == y else 1), 0)

    def expected_namesakes(self, na, nb, own_dates=(), sex=None):
        """Expected number of other people in the clinic with this family and given name (u times N): the
        product of the two names' frequencies (independence), or the other records with this very full name when
        there are more of them."""
        fam = self.others(self.tokens, na.family_key, nb.family_key) + 0.5
        if not (na.given and nb.given):
            return fam
        if na.given_key == nb.given_key:
            # both carry the whole (maybe compound) given name: ``Maria Carmen`` is rarer than ``Maria``
            giv = self.others(self.tokens, na.given_key, nb.given_key) + 0.5
        else:
            giv = self.others(self.tokens, na.given_first, nb.given_first) + 0.5
        full = max(self.people(na, own_dates, sex), self.people(nb, own_dates, sex))
        return max(fam * giv / max(self.n, 1), float(full))

    def namesake_terms(self, na, nb, own_dates=(), sex=None):
        """The two parts of :meth:`expected_namesakes` apart: ``(chance, people)``, the number of people expected to
        carry this full name by chance (the product of the two names' frequencies) and the other people of this
        clinic seen with it (:meth:`people`). None without given names."""
        if not (na.given and nb.given):
            return None
        fam = self.others(self.tokens, na.family_key, nb.family_key) + 0.5
        if na.given_key == nb.given_key:
            giv = self.others(self.tokens, na.given_key, nb.given_key) + 0.5
        else:
            giv = self.others(self.tokens, na.given_first, nb.given_first) + 0.5
        people = max(self.people(na, own_dates, sex), self.people(nb, own_dates, sex))
        return fam * giv / max(self.n, 1), people

    def chance_of_name(self, pn):
        """People expected to carry this full name by chance (independence of family and given name)."""
        if not pn.given:
            return float(self.tokens.get(pn.family_key, 0))
        return self.tokens.get(pn.family_key, 0) * self.tokens.get(pn.given_key, 0) / max(self.n, 1)

    def people(self, pn, own_dates=(), sex=None):
        """Other people of this clinic with this full name, of the pair's sex or unknown: its records' birth dates in
        clusters, where two dates are one person's when their years are at most two apart or one is a typo of the
        other (one digit, day and month swapped, two digits transposed: :func:`_same_person_dates`), so that a
        person's own mistyped records are not counted as namesakes. The clusters that hold a date of the pair's own
        (``own_dates``) are left out."""
        key = (_full_key(pn), sex)
        memo = (key, own_dates)
        if memo in self._people:
            return self._people[memo]
        clusters = self._clusters.get(key)
        if clusters is None:
            dates = sorted(
                {d for d, other in self.full.get(key[0], ()) if sex is None or other is None or other == sex},
                key=lambda d: (d[0], d[1] or 0, d[2] or 0),
            )
            groups = []
            for date in dates:
                joined = [c for c in groups if any(_same_person_dates(date, x) for x in c)]
                for c in joined[1:]:
                    joined[0].extend(c)
                    groups.remove(c)
                if joined:
                    joined[0].append(date)
                else:
                    groups.append([date])
            # (lowest year, highest year, dates): a typo changes a year by nine at most, so a cluster further than
            # that from the pair's own years needs no date-by-date look
            clusters = [(min(d[0] for d in c), max(d[0] for d in c), c) for c in groups]
            self._clusters[key] = clusters
        if not own_dates:
            count = len(clusters)
        else:
            low = min(o[0] for o in own_dates) - 9
            high = max(o[0] for o in own_dates) + 9
            count = sum(
                1
                for lo, hi, c in clusters
                if hi < low or lo > high or not any(_same_person_dates(d, o) for d in c for o in own_dates)
            )
        if len(self._people) < 1 << 16:
            self._people[memo] = count
        return count


@lru_cache(maxsize=1 << 18)
def _same_person_dates(d1, d2):
    """True when two parsed birth dates may be one person's: years at most two apart, or a typo of one another
    (what :func:`compare_birth_dates` scores 0.8 or more: one digit in the day, month or last digit of the year,
    two adjacent digits transposed)."""
    gap = abs(d1[0] - d2[0])
    if gap <= 2:
        return True
    if d1[2] is None or d2[2] is None or gap > 9:
        return False
    s1 = '{:04d}{:02d}{:02d}'.format(*d1)
    s2 = '{:04d}{:02d}{:02d}'.format(*d2)
    diff = [i for i in range(8) if s1[i] != s2[i]]
    if len(diff) == 1:
        return diff[0] >= 3
    return len(diff) == 2 and diff[1] == diff[0] + 1 and s1[diff[0]] == s2[diff[1]] and s1[diff[1]] == s2[diff[0]]


def _full_key(pn):
    """A full name whatever the order of its parts (``ROSSI^MARIA`` = ``MARIA^ROSSI``), with the whole given name
    (``ROSSI^MARIA GRAZIA`` is another full name than ``ROSSI^MARIA``)."""
    return tuple(sorted((pn.family_key, pn.given_key)))


def estimate_m_u(patterns, iterations=200, tolerance=1e-7):
    """EM for the Fellegi-Sunter model with conditionally independent binary fields.

    ``patterns``: ``{agreement tuple (0/1 per field): number of candidate pairs}``. Returns ``{'m': [...],
    'u': [...], 'p': share of matches, 'iterations': n, 'stable': bool}``. Stable means it converged, the
    share of matches is strictly between 0.1 % and 99.9 % and every field agrees more often among matches
    than among non-matches (m > u); otherwise the caller keeps its priors.
    """
    total = sum(patterns.values())
    if not patterns or total < 50:
        return {'m': [], 'u': [], 'p': 0.0, 'iterations': 0, 'stable': False}
    k = len(next(iter(patterns)))
    m = [0.9] * k
    u = [0.1] * k
    p = 0.1
    converged = False
    step = 0
    while step < iterations:
        step += 1
        sum_g = 0.0
        m_num = [0.0] * k
        u_num = [0.0] * k
        for gamma, count in patterns.items():
            pm_ = p
            pu_ = 1.0 - p
            for i, g in enumerate(gamma):
                pm_ *= m[i] if g else 1.0 - m[i]
                pu_ *= u[i] if g else 1.0 - u[i]
            g_match = pm_ / (pm_ + pu_) if pm_ + pu_ > 0 else 0.0
            sum_g += g_match * count
            for i, g in enumerate(gamma):
                if g:
                    m_num[i] += g_match * count
                    u_num[i] += (1.0 - g_match) * count
        new_p = sum_g / total
        if sum_g <= 0 or sum_g >= total:
            break
        new_m = [min(max(x / sum_g, 1e-6), 1 - 1e-6) for x in m_num]
        new_u = [min(max(x / (total - sum_g), 1e-6), 1 - 1e-6) for x in u_num]
        delta = max([abs(new_p - p)] + [abs(a - b) for a, b in zip(new_m + new_u, m + u, strict=True)])
        m, u, p = new_m, new_u, new_p
        if delta < tolerance:
            converged = True
            break
    stable = converged and 0.001 < p < 0.999 and all(mi > ui for mi, ui in zip(m, u, strict=True))
    return {
        'm': [round(x, 4) for x in m],
        'u': [round(x, 4) for x in u],
        'p': round(p, 4),
        'iterations': step,
        'stable': stable,
    }


EM_FIELDS = ('family_name', 'given_name', 'birth_date', 'sex')


def estimate_undated_reregistrations(records, pairs, freq, min_records=20):
    """Share of the records without a birth date that are re-registrations of a person with a dated record, from
    the clinic's own data: the undated records whose full name (in some reading) is also carried by a dated
    candidate record, less the number expected by chance (a new person whose name some dated person happens to
    carry: ``1 - exp(-chance)`` per record, with the name's frequencies). Returns ``(share, undated records, with a
    namesake, expected by chance)``; the share is None with fewer than ``min_records`` undated records. It is a lower
    bound: a re-registration whose name has a typo is not counted.

    This is the prior of the Fellegi-Sunter decision for a pair with a date on one side only: where most undated
    records are re-registrations (stations that do not send the birth date), a name that is common but carried by
    no other person here still settles the pair; where undated records are mostly new people, it does not."""
    undated = [i for i, r in enumerate(records) if r.parsed_names and not r.parsed_dates]
    if len(undated) < min_records:
        return None, len(undated), 0, 0.0
    keys = {}

    def full_keys(index):
        if index not in keys:
            keys[index] = {
                _full_key(x) for pn in records[index].parsed_names for x in (pn, *pn.alternatives) if x.given
            }
        return keys[index]

    hit = set()
    for i, j in pairs:
        a, b = records[i], records[j]
        if bool(a.parsed_dates) == bool(b.parsed_dates) or not (a.parsed_names and b.parsed_names):
            continue
        u, d = (i, j) if not a.parsed_dates else (j, i)
        if u not in hit and full_keys(u) & full_keys(d):
            hit.add(u)
    chance = 0.0
    for u in undated:
        pn = records[u].parsed_names[0]
        if pn.given:
            chance += 1.0 - math.exp(-freq.chance_of_name(pn))
        else:
            chance += 1.0
    share = (len(hit) - chance) / (len(undated) - chance) if len(undated) > chance else 0.0
    return min(max(share, 0.0), 0.99), len(undated), len(hit), round(chance, 1)


def _agreement_pattern(a, b):
    na, nb = a.parsed_names[0], b.parsed_names[0]
    return (
        int(na.family_key == nb.family_key),
        int(bool(na.given) and na.given_first == nb.given_first),
        int(bool(set(a.parsed_dates) & set(b.parsed_dates))),
        int(a.sex is not None and a.sex == b.sex),
    )


def _name_probability(na, nb, cfg, own_dates=(), sex=None, day_ratio=1.0):
    """Probability that an agreement of these two names is the same person rather than a namesake:
    ``m / (m + expected namesakes)`` with ``m`` from EM (or its prior); None without frequencies. ``day_ratio``: the
    likelihood ratio of a study date both records share (:func:`_study_day_ratio`); a namesake would also have to
    be imaged that day, so the expected namesakes are divided by it."""
    freq = cfg.get('_freq')
    if freq is None:
        return None, None
    expected = freq.expected_namesakes(na, nb, own_dates, sex) / day_ratio
    m = cfg.get('_m_name', cfg['name_m_prior'])
    return m / (m + expected), expected


def _study_day_ratio(a, b, cfg):
    """``(day, ratio)`` for two records imaged on the same quiet day (under 1 % of the records): the likelihood ratio
    ``m / u`` of that agreement, ``u`` the share of the clinic's records on that day and ``m`` the share of sure
    pairs that share a study date (estimated on this clinic's candidate pairs, :func:`estimate_same_day_m`), at
    least 1. ``(None, 1.0)`` otherwise."""
    freq = cfg.get('_freq')
    if freq is None or 'study_date' not in cfg['_fields'] or not (a.study_dates and b.study_dates):
        return None, 1.0
    shared = set(a.study_dates) & set(b.study_dates)
    if not shared:
        return None, 1.0
    day = min(shared, key=lambda d: (freq.study_date.get(d, 0), d))
    count = freq.study_date.get(day, 0)
    if not freq.n or count / freq.n >= 0.01:
        return day, 1.0
    u = (max(count - 2, 0) + 0.5) / freq.n
    return day, max(1.0, cfg.get('_m_same_day', 0.0) / u)


def estimate_same_day_m(records, pairs, minimum=30):
    """Share of the sure pairs (same family name, given name, full birth date and sex) that share a study date: the
    m-probability of a shared study date among the same person's records here (a station imaging the patient on the
    practice's visit day). None with fewer than ``minimum`` sure pairs."""
    sure = same = 0
    for i, j in pairs:
        a, b = records[i], records[j]
        if not (a.parsed_names and b.parsed_names and a.study_dates and b.study_dates):
            continue
        if a.sex is None or a.sex != b.sex or not (a.has_full_date() and set(a.parsed_dates) & set(b.parsed_dates)):
            continue
        na, nb = a.parsed_names[0], b.parsed_names[0]
        if na.family_key != nb.family_key or not na.given or na.given_key != nb.given_key:
            continue
        sure += 1
        same += bool(set(a.study_dates) & set(b.study_dates))
    if sure < minimum:
        return None
    return same / sure


# ---------------------------------------------------------------------------------------------
# Pair comparison
# ---------------------------------------------------------------------------------------------


# Options given as numbers: name -> (lowest, highest, integer only).
_NUMBER_RULES = {
    'missing_one_date_factor': (0.0, 1.0, False),
    'missing_both_dates_factor': (0.0, 1.0, False),
    'family_min': (0.0, 1.0, False),
    'given_min': (0.0, 1.0, False),
    'cap_name_conflict': (0.0, 1.0, False),
    'cap_date_conflict': (0.0, 1.0, False),
    'cap_sex_conflict': (0.0, 1.0, False),
    'cap_suffix_conflict': (0.0, 1.0, False),
    'ambiguity_margin': (0.0, 1.0, False),
    'frequency_min_records': (0, 10000000, True),
    'distinct_name_count': (2, 10000000, True),
    'missing_date_rare_factor': (0.0, 1.0, False),
    'missing_date_common_factor': (0.0, 1.0, False),
    'rare_name_probability': (0.0, 1.0, False),
    'common_name_namesakes': (0.0, 1000000.0, False),
    'name_m_prior': (0.01, 1.0, False),
    'max_block_size': (2, 100000, True),
    'window': (1, 100000, True),
    'max_names_per_record': (1, 100, True),
    'max_typo_year_gap': (0, 100, True),
}


def _check_number(name, value, low, high, integer):
    """Raise ValueError unless ``value`` is a number (an integer when ``integer``) from ``low`` to ``high``."""
    kind = 'an integer' if integer else 'a number'
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ValueError(f'{name} {value!r} is not {kind}: give {kind} from {low} to {high}')
    if not low <= value <= high:
        raise ValueError(f'{name} {value!r} is out of range: give {kind} from {low} to {high}')


def _check_option(key, value):
    """Raise ValueError (one line: option, value, rule) when ``value`` is not valid for matching option ``key``."""
    if key == 'weights':
        if not isinstance(value, dict):
            raise ValueError(
                'weights {!r} is not a dictionary: give {{name: number}} with names among {}'.format(
                    value, ', '.join(sorted(DEFAULT_CONFIG['weights']))
                )
            )
        for wkey, wval in value.items():
            if wkey not in DEFAULT_CONFIG['weights']:
                raise ValueError(
                    "unknown weight '{}'; known weights: {}".format(wkey, ', '.join(sorted(DEFAULT_CONFIG['weights'])))
                )
            _check_number(f'weights.{wkey}', wval, 0.0, 1.0, False)
    elif key in ('fields', 'placeholder_dates'):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            what = 'field names' if key == 'fields' else 'dates (YYYYMMDD)'
            raise ValueError(f'{key} {value!r} is not a list of strings: give a list of {what}')
    elif key in _NUMBER_RULES:
        _check_number(key, value, *_NUMBER_RULES[key])


def _merge_config(config):
    cfg = dict(DEFAULT_CONFIG)
    cfg['weights'] = dict(DEFAULT_CONFIG['weights'])
    if config is not None and not isinstance(config, dict):
        raise ValueError(f'matching options {config!r} are not a dictionary: give {{option: value}}')
    if config:
        for key, value in config.items():
            if key not in DEFAULT_CONFIG:
                raise ValueError(
                    "unknown matching option '{}'; known options: {}".format(key, ', '.join(sorted(DEFAULT_CONFIG)))
                )
            _check_option(key, value)
            if key == 'weights':
                for wkey, wval in value.items():
                    cfg['weights'][wkey] = float(wval)
            elif key == 'fields':
                unknown = [f for f in value if f not in DEFAULT_CONFIG['fields']]
                if unknown:
                    raise ValueError(
                        "unknown field '{}'; known fields: {}".format(unknown[0], ', '.join(DEFAULT_CONFIG['fields']))
                    )
                cfg['fields'] = list(value)
            else:
                cfg[key] = value
    if not 0.0 < float(cfg['threshold']) <= 1.0:
        raise ValueError("threshold {!r} must be greater than 0 and at most 1".format(cfg['threshold']))
    if 'name' not in cfg['fields']:
        raise ValueError("fields {!r} must include 'name': names are the base of every match".format(cfg['fields']))
    cfg['_fields'] = frozenset(cfg['fields'])
    return cfg


def compare_records(a, b, config=None):
    """Score one pair of records. Returns a dict: score, reasons, conflict (a hard conflict: never one group)."""
    cfg = config if (config and '_fields' in config) else _merge_config(config)
    return _compare(a, b, cfg)


# How much likelier two birth dates one slip apart (a digit, a day/month swap, a year off by one) are for one person
# typed twice than for two people: about one re-registration in ten has a slip, spread over some thirty dates one
# slip away, against one chance in about thirty thousand (85 years of birth days) that another person's date falls
# on a given one of them. 10 keeps a wide margin below that: synthetic clinics that plant namesakes with near
# birth dates lost precision with 20 (bench/results/dedupe_quality.json).
_DATE_SLIP_LIKELIHOOD_RATIO = 10.0


def _with_date_slip(probability):
    """The probability that a name agreement is one person, updated by a birth-date slip between the two."""
    if probability >= 1.0:
        return 1.0
    odds = probability / (1.0 - probability) * _DATE_SLIP_LIKELIHOOD_RATIO
    return odds / (1.0 + odds)


def _far_dates(dates_a, dates_b, max_year_gap):
    """True when every pair of dates is far apart: years further than ``max_year_gap``, a partial date that
    disagrees, or full dates that differ in three digits or more (two typos of one date differ in two)."""
    for da in dates_a:
        for db in dates_b:
            if abs(da[0] - db[0]) > max_year_gap:
                continue
            if da[2] is None or db[2] is None:
                if da[1] is None or db[1] is None or da[1] == db[1]:
                    return False
                continue
            s1 = '{:04d}{:02d}{:02d}'.format(*da)
            s2 = '{:04d}{:02d}{:02d}'.format(*db)
            if sum(1 for x, y in zip(s1, s2, strict=False) if x != y) <= 2:
                return False
    # a year and month against a full date a few years off: far unless their known digits differ in one digit, a typo
    # (``1973-12`` and a mistyped ``1979-12-09`` of one person)
    for da in dates_a:
        for db in dates_b:
            if (da[2] is None) == (db[2] is None) or da[1] is None or db[1] is None:
                continue
            s1 = '{:04d}{:02d}'.format(*da[:2])
            s2 = '{:04d}{:02d}'.format(*db[:2])
            if sum(1 for x, y in zip(s1, s2, strict=True) if x != y) <= 1:
                return False
    return True


def _compare(a, b, cfg):
    fields = cfg['_fields']
    weights = cfg['weights']
    if not a.parsed_names or not b.parsed_names:
        return {'score': 0.0, 'reasons': ['name missing'], 'conflict': False}
    best = None
    for na in a.parsed_names[: cfg['max_names_per_record']]:
        for nb in b.parsed_names[: cfg['max_names_per_record']]:
            res = compare_names(na, nb, cfg)
            bad = res['family_conflict'] or res['given_conflict'] or res['suffix_conflict']
            key = (not bad, res['score'])
            if best is None or key > best[0]:
                best = (key, res, na, nb)
    _key, name, _na, _nb = best
    best_a, best_b = name['names']
    reasons = list(name['reasons'])
    name_conflict = name['family_conflict'] or name['given_conflict']
    own_dates = tuple(_unique([*a.parsed_dates, *b.parsed_dates]))
    same_day, day_ratio = _study_day_ratio(a, b, cfg)
    probability, expected = _name_probability(best_a, best_b, cfg, own_dates, a.sex or b.sex, day_ratio)
    evidence = {'name': round(name['score'], 3)}
    held_back = False
    if probability is not None:
        freq = cfg['_freq']
        evidence['name_expected_namesakes'] = round(expected, 4)
        evidence['name_same_person_probability'] = round(probability, 3)
        counts = f'family name {best_a.family_key.upper()} in {freq.family.get(best_a.family_key, 0)}'
        if best_a.given:
            counts += f', given name {best_a.given_first.upper()} in {freq.given.get(best_a.given_first, 0)}'
        reasons.append(
            f'{counts} of {freq.n} records: {"rare" if probability >= cfg["rare_name_probability"] else "common"} '
            f'name (expected namesakes {expected:.2g})'
        )
        if day_ratio > 1.0:
            evidence['study_day_likelihood_ratio'] = round(day_ratio, 1)
            reasons.append(
                f'imaged on the same quiet day {same_day}: a namesake would have to be imaged that day too '
                f'(likelihood ratio {day_ratio:.3g})'
            )
    date_score = None
    date_conflict = False
    if 'birth_date' in fields and a.parsed_dates and b.parsed_dates:
        best_date = None
        for da in a.parsed_dates:
            for db in b.parsed_dates:
                res = compare_birth_dates(da, db)
                if best_date is None or res[0] > best_date[0]:
                    best_date = res
        date_score, date_reason, date_conflict = best_date
        reasons.append(date_reason)
        evidence['birth_date'] = date_score
    # with frequencies, a missing birth date costs little for a rare name and much for a common one
    one_factor = cfg['missing_one_date_factor']
    if probability is not None:
        missing_probability = probability
        prior = cfg.get('_undated_prior')
        terms = None
        if prior is not None and bool(a.parsed_dates) != bool(b.parsed_dates):
            terms = cfg['_freq'].namesake_terms(best_a, best_b, own_dates, a.sex or b.sex)
        if terms is not None:
            # the undated record is a re-registration of this person (prior ``prior``, split among the people here
            # with this name) or a new person who carries the name by chance
            chance, people = terms
            m = cfg.get('_m_name', cfg['name_m_prior'])
            others = prior * m * people + (1.0 - prior) * chance
            missing_probability = prior * m / (prior * m + others / day_ratio)
            evidence['undated_reregistration_prior'] = round(prior, 3)
            evidence['name_same_person_probability_undated'] = round(missing_probability, 3)
        one_factor = cfg['missing_date_common_factor'] + missing_probability * (
            cfg['missing_date_rare_factor'] - cfg['missing_date_common_factor']
        )
    if date_score is not None:
        total = weights['name'] + weights['birth_date']
        score = (weights['name'] * name['score'] + weights['birth_date'] * date_score) / total
        if (
            probability is not None
            and 0 < date_score < 1.0
            and a.has_full_date()
            and b.has_full_date()
            and (
                (name['score'] < 1.0 and _with_date_slip(probability) < cfg['rare_name_probability'])
                or expected >= cfg['common_name_namesakes']
            )
        ):
            # a birth-date slip with a name variant counts only for a name rare in this clinic, and a slip
            # alone not for a name several other people here carry
            if score >= float(cfg['threshold']):
                held_back = True
            score = min(score, float(cfg['threshold']) - 0.01)
            reasons.append('birth-date slip on a name common here: not enough')
    elif 'birth_date' in fields and (a.parsed_dates or b.parsed_dates):
        score = name['score'] * one_factor
        held_back = name['score'] * cfg['missing_one_date_factor'] >= float(cfg['threshold']) > score
        reasons.append('birth date missing on one record')
        evidence['birth_date'] = 'missing on one'
    elif 'birth_date' in fields:
        one = cfg['missing_one_date_factor']
        both = cfg['missing_both_dates_factor'] / one if one else 0.0
        score = name['score'] * one_factor * both
        reasons.append('no birth dates')
        evidence['birth_date'] = 'missing'
    else:
        score = name['score']
    if 'other_ids' in fields and weights['other_ids'] and (a.other_ids or b.other_ids):
        if a.patient_id in b.id_set or b.patient_id in a.id_set:
            score += weights['other_ids']
            reasons.append('OtherPatientIDs link the two PatientIDs')
        elif set(a.other_ids) & set(b.other_ids):
            score += weights['other_ids']
            reasons.append('same OtherPatientIDs ({})'.format(', '.join(sorted(set(a.other_ids) & set(b.other_ids)))))
    if 'study_uid' in fields and a.study_uids and b.study_uids:
        shared = set(a.study_uids) & set(b.study_uids)
        if shared:
            score += weights['study_uid']
            reasons.append('same StudyInstanceUID under both PatientIDs')
    if a.issuers and b.issuers and not set(a.issuers) & set(b.issuers):
        reasons.append(f'PatientIDs from different issuers ({a.issuers[0]} / {b.issuers[0]})')
    if 'institution' in fields and a.institutions and b.institutions and set(a.institutions) & set(b.institutions):
        score += weights['institution']
        reasons.append('same institution')
    shared_dates = 'study_date' in fields and set(a.study_dates) & set(b.study_dates)
    if shared_dates:
        freq = cfg.get('_freq')
        day = min(shared_dates)
        share = freq.study_date.get(day, 0) / freq.n if freq is not None and freq.n else None
        if share is not None and share < 0.01:
            # a day on which few patients were imaged: likely the same visit seen by two stations
            score += weights['study_date']
            where = ''
            if a.stations and b.stations and not set(a.stations) & set(b.stations):
                where = ' by different stations'
            reasons.append(f'same study date {day}{where} ({freq.study_date.get(day, 0)} of {freq.n} records that day)')
            evidence['study_date'] = day
        else:
            reasons.append('same study date')
    sex_conflict = 'sex' in fields and a.sex is not None and b.sex is not None and a.sex != b.sex
    if sex_conflict:
        reasons.append(f'different sex ({a.sex} vs {b.sex})')
    elif 'sex' in fields and a.sex is not None and a.sex == b.sex:
        reasons.append('same sex')
        evidence['sex'] = a.sex
    if score > 1.0:
        score = 1.0
    if name_conflict:
        score = min(score, cfg['cap_name_conflict'])
    if name['suffix_conflict']:
        score = min(score, cfg['cap_suffix_conflict'])
    if date_conflict:
        score = min(score, cfg['cap_date_conflict'])
    if sex_conflict:
        score = min(score, cfg['cap_sex_conflict'])
    # a hard conflict keeps two records out of one group; close birth dates (typo chains) do not
    far_dates = date_conflict and _far_dates(a.parsed_dates, b.parsed_dates, cfg['max_typo_year_gap'])
    conflict = name_conflict or name['suffix_conflict'] or far_dates or sex_conflict
    result = {'score': round(score, 4), 'reasons': reasons, 'conflict': conflict, 'evidence': evidence}
    if held_back and not conflict:
        result['held_back'] = True  # enough by the fixed rules, not for a name this common here: ask a person
    return result


# ---------------------------------------------------------------------------------------------
# Blocking
# ---------------------------------------------------------------------------------------------


def _name_codes(pn):
    """Phonetic codes of a name and its name keys: both codes (sorted, so the order does not matter),
    and each code with the first two letters of the other part (a typo that changes one code)."""
    fam = phonetic_key(pn.family_key)
    giv = phonetic_key(pn.given_first) if pn.given else ''
    combos = {'|'.join(sorted(c for c in (fam, giv) if c))}
    if giv:
        combos.add(f'{fam}|{pn.given_first[:2]}')
        combos.add(f'{giv}|{pn.family_key[:2]}')
    return fam, giv, combos


_KEY_FAMILIES = ('D', 'Y', 'M', 'N', 'I', 'S')


def _family_keys(record, family, cfg, codes):
    """Blocking keys of one family for one record (``codes``: phonetic codes of its names)."""
    fields = cfg['_fields']
    keys = set()
    if family in ('D', 'Y', 'M', 'N'):
        use_dates = 'birth_date' in fields
        for fam, giv, combos in codes:
            if family == 'N':
                keys.update(combos)
                continue
            if not use_dates:
                continue
            for year, month, day in record.parsed_dates:
                if family == 'Y':
                    keys.update(f'{year:04d}|{combo}' for combo in combos)
                elif day is None:
                    continue
                elif family == 'M':
                    keys.update(f'{month:02d}{day:02d}|{combo}' for combo in combos)
                else:
                    # day and month in sorted order, so that a day/month swap lands in the same block
                    low, high = (month, day) if day > 12 or month <= day else (day, month)
                    for code in (fam, giv):
                        if code:
                            keys.add(f'{year:04d}{low:02d}{high:02d}{code}')
    elif family == 'I':
        if 'other_ids' in fields and record.other_ids:
            keys.update(record.id_set)
    elif family == 'S' and 'study_uid' in fields:
        keys.update(record.study_uids)
    return keys


def _codes_of(record, cfg):
    return [_name_codes(x) for pn in record.parsed_names[: cfg['max_names_per_record']] for x in (pn, *pn.alternatives)]


def blocking_keys(record, config=None):
    """All blocking keys of one record, as sorted ``(family, key)`` tuples.

    Families: ``D`` birth date (day/month sorted) + phonetic key of a name part; ``Y`` birth year +
    phonetic keys; ``M`` month and day + phonetic keys; ``N`` phonetic keys only (used for pairs with an
    unknown or partial birth date); ``I`` PatientID/OtherPatientIDs; ``S`` StudyInstanceUID.
    """
    cfg = config if (config and '_fields' in config) else _merge_config(config)
    codes = _codes_of(record, cfg)
    return sorted((family, key) for family in _KEY_FAMILIES for key in _family_keys(record, family, cfg, codes))


def _candidate_pairs(records, cfg, stats):
    """Yield candidate index pairs (i < j), each once."""
    seen = set()
    n = len(records)
    window = cfg['window']
    cap = cfg['max_block_size']
    full_date = [r.has_full_date() for r in records]
    codes = [_codes_of(r, cfg) for r in records]
    for family in _KEY_FAMILIES:
        blocks = {}
        for index, record in enumerate(records):
            for key in _family_keys(record, family, cfg, codes[index]):
                blocks.setdefault(key, []).append(index)
        for key in sorted(blocks):
            members = blocks[key]
            if len(members) < 2:
                continue
            only_partial = family == 'N'
            if only_partial and all(full_date[m] for m in members):
                continue  # every record has a full birth date: the date blocks cover them
            stats['blocks'] += 1
            if len(members) > cap:
                # sorted neighbourhood instead of all pairs
                stats['capped_blocks'] += 1
                ordered = sorted(members, key=lambda m: (records[m].parsed_names[0].sort_key, records[m].patient_id))
                candidates = ((ordered[p], q) for p in range(len(ordered)) for q in ordered[p + 1 : p + 1 + window])
            elif only_partial:
                # name-only block: pairs with at least one record whose birth date is unknown or partial
                partial = [m for m in members if not full_date[m]]
                full = [m for m in members if full_date[m]]
                candidates = itertools.chain(
                    ((partial[p], q) for p in range(len(partial)) for q in partial[p + 1 :]),
                    ((p, q) for p in partial for q in full),
                )
            else:
                candidates = ((members[p], q) for p in range(len(members)) for q in members[p + 1 :])
            for i, j in candidates:
                if only_partial and full_date[i] and full_date[j]:
                    continue
                if i > j:
                    i, j = j, i
                code = i * n + j
                if code not in seen:
                    seen.add(code)
                    yield i, j
        del blocks
    stats['candidate_pairs'] = len(seen)


# ---------------------------------------------------------------------------------------------
# Grouping
# ---------------------------------------------------------------------------------------------


def find_duplicates(records, config=None):
    """Find groups of records that are likely the same person.

    ``records``: a list of :class:`PatientRecord` (one per PatientID). ``config``: overrides of
    :data:`DEFAULT_CONFIG` (threshold, fields, weights, caps, blocking sizes).

    Returns a dict with ``groups`` (each: ``patient_ids``, ``score``, ``reasons``, ``pairs``),
    ``ambiguous``, ``collisions``, ``shared_study_uids`` and ``stats``. Order is deterministic.
    """
    cfg = _merge_config(config)
    threshold = float(cfg['threshold'])
    records = sorted(records, key=lambda r: r.patient_id)
    n = len(records)
    stats = {'records': n, 'blocks': 0, 'capped_blocks': 0, 'candidate_pairs': 0, 'pairs_above_threshold': 0}
    pairs = list(_candidate_pairs(records, cfg, stats))
    if n >= cfg['frequency_min_records'] and n:
        # value frequencies and the m-probability of a name agreement from this clinic's own records
        cfg['_freq'] = NameFrequencies(records, cfg['max_names_per_record'])
        patterns = {}
        for i, j in pairs:
            if records[i].parsed_names and records[j].parsed_names:
                gamma = _agreement_pattern(records[i], records[j])
                patterns[gamma] = patterns.get(gamma, 0) + 1
        em = estimate_m_u(patterns)
        if em['stable']:
            cfg['_m_name'] = em['m'][0] * em['m'][1]
        stats['frequencies'] = True
        stats['em'] = dict(em, fields=list(EM_FIELDS), used=em['stable'])
        share, undated, with_namesake, chance = estimate_undated_reregistrations(records, pairs, cfg['_freq'])
        cfg['_undated_prior'] = share
        same_day = estimate_same_day_m(records, pairs)
        if same_day is not None:
            cfg['_m_same_day'] = same_day
        stats['same_study_day_m'] = None if same_day is None else round(same_day, 3)
        stats['undated'] = {
            'records': undated,
            'with_a_dated_namesake': with_namesake,
            'expected_by_chance': chance,
            'reregistration_share': None if share is None else round(share, 3),
        }
    else:
        stats['frequencies'] = False
    edges = []
    held = []
    for i, j in pairs:
        res = _compare(records[i], records[j], cfg)
        if res['score'] >= threshold:
            edges.append((res['score'], i, j, res))
        elif res.get('held_back'):
            held.append((i, j))
    stats['pairs_above_threshold'] = len(edges)
    stats['pairs_held_back_by_frequency'] = len(held)
    groups, ambiguous = _group(records, edges, cfg)
    _add_held_back(records, held, groups, ambiguous)
    return {
        'groups': groups,
        'ambiguous': ambiguous,
        'collisions': find_collisions(records, cfg),
        'shared_study_uids': _shared_study_uids(records),
        'stats': stats,
        'threshold': threshold,
    }


def _group(records, edges, cfg):
    edges.sort(key=lambda e: (-e[0], records[e[1]].patient_id, records[e[2]].patient_id))
    parent = {}
    members = {}
    accepted = []
    refused = []
    conflict_cache = {}

    def find(x):
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def in_conflict(i, j):
        key = (i, j) if i < j else (j, i)
        if key not in conflict_cache:
            conflict_cache[key] = _compare(records[key[0]], records[key[1]], cfg)['conflict']
        return conflict_cache[key]

    for edge in edges:
        _score, i, j, _res = edge
        ri, rj = find(i), find(j)
        if ri == rj:
            accepted.append(edge)
            continue
        mi, mj = members.get(ri, [i]), members.get(rj, [j])
        if any(in_conflict(x, y) for x in mi for y in mj):
            refused.append(edge)
            continue
        parent[rj] = ri
        members[ri] = mi + mj
        members.pop(rj, None)
        accepted.append(edge)
    # ambiguity: a record whose refused link is nearly as strong as its best accepted link
    best_accepted = {}
    for score, i, j, _res in accepted:
        for x in (i, j):
            if score > best_accepted.get(x, 0.0):
                best_accepted[x] = score
    ambiguous = {}
    for score, i, j, _res in refused:
        for x, other in ((i, j), (j, i)):
            if x in best_accepted and best_accepted[x] - score <= cfg['ambiguity_margin']:
                ambiguous.setdefault(x, set()).add(other)
    if ambiguous:
        for _score, i, j, _res in accepted:
            for x, other in ((i, j), (j, i)):
                if x in ambiguous:
                    ambiguous[x].add(other)
        accepted = [e for e in accepted if e[1] not in ambiguous and e[2] not in ambiguous]
    # rebuild components from the accepted edges
    parent = {}
    by_root = {}
    for edge in accepted:
        ri, rj = find(edge[1]), find(edge[2])
        if ri != rj:
            parent[rj] = ri
    for edge in accepted:
        by_root.setdefault(find(edge[1]), []).append(edge)
    groups = []
    for root_edges in by_root.values():
        ids = sorted(
            set([records[e[1]].patient_id for e in root_edges] + [records[e[2]].patient_id for e in root_edges])
        )
        # spanning edges = those that joined components (max spanning tree); weakest gives the score
        pairs = []
        reasons = []
        for score, i, j, res in sorted(root_edges, key=lambda e: (records[e[1]].patient_id, records[e[2]].patient_id)):
            pairs.append(
                {
                    'patient_ids': [records[i].patient_id, records[j].patient_id],
                    'score': score,
                    'reasons': res['reasons'],
                    'evidence': res.get('evidence', {}),
                }
            )
            for reason in res['reasons']:
                if reason not in reasons:
                    reasons.append(reason)
        tree_scores = _spanning_scores(root_edges)
        groups.append({'patient_ids': ids, 'score': min(tree_scores), 'reasons': reasons, 'pairs': pairs})
    groups.sort(key=lambda g: (-g['score'], g['patient_ids']))
    ambiguous_out = []
    for x in sorted(ambiguous, key=lambda k: records[k].patient_id):
        ambiguous_out.append(
            {
                'patient_id': records[x].patient_id,
                'candidates': sorted(records[o].patient_id for o in ambiguous[x]),
                'reason': 'matches records of different people about equally well; not grouped',
            }
        )
    return groups, ambiguous_out


def _add_held_back(records, held, groups, ambiguous):
    """Pairs that only a name's frequency kept apart go to the ambiguous list (for a person), not to a group."""
    grouped = {pid for g in groups for pid in g['patient_ids']}
    listed = {item['patient_id']: item for item in ambiguous}
    for i, j in held:
        a, b = records[i], records[j]
        # the record with less date information is the uncertain one
        x, other = (a, b) if len(a.parsed_dates) <= len(b.parsed_dates) else (b, a)
        if x.patient_id in grouped:
            continue
        item = listed.get(x.patient_id)
        if item is None:
            item = listed[x.patient_id] = {
                'patient_id': x.patient_id,
                'candidates': [],
                'reason': 'the name is common in this clinic and the birth dates do not settle it; not grouped',
            }
        if other.patient_id not in item['candidates']:
            item['candidates'] = sorted([*item['candidates'], other.patient_id])
    ambiguous[:] = sorted(listed.values(), key=lambda item: item['patient_id'])


def _spanning_scores(edges):
    parent = {}

    def find(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    scores = []
    for score, i, j, _res in sorted(edges, key=lambda e: -e[0]):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[rj] = ri
            scores.append(score)
    return scores


# ---------------------------------------------------------------------------------------------
# Collisions
# ---------------------------------------------------------------------------------------------


def find_collisions(records, config=None):
    """Records whose PatientID seems to be used for different people. Sorted by PatientID."""
    cfg = config if (config and '_fields' in config) else _merge_config(config)
    out = []
    for record in sorted(records, key=lambda r: r.patient_id):
        reasons = []
        conflicting_names = []
        names = record.names
        for x in range(len(names)):
            for y in range(x + 1, len(names)):
                pa, pb = parse_person_name(names[x]), parse_person_name(names[y])
                if pa is None or pb is None:
                    continue
                res = compare_names(pa, pb, cfg)
                if res['family_conflict'] or res['given_conflict'] or res['suffix_conflict']:
                    conflicting_names.append((names[x], names[y]))
                    reasons.append(f'different names ({pa.sort_key} / {pb.sort_key})')
        dates = record.parsed_dates
        for x in range(len(dates)):
            for y in range(x + 1, len(dates)):
                _score, reason, conflict = compare_birth_dates(dates[x], dates[y])
                if conflict:
                    reasons.append(reason)
        known = {_SEXES[s] for s in record.sexes if s in _SEXES}
        if len(known) > 1 and reasons:
            reasons.append('different sexes ({})'.format(', '.join(sorted(known))))
        if not reasons:
            continue
        kind = 'id_collision'
        if conflicting_names and all(
            record.name_studies.get(x, set()) & record.name_studies.get(y, set()) for x, y in conflicting_names
        ):
            kind = 'name_changed_in_study'
            reasons.append('the different names were seen in the same StudyInstanceUID')
        out.append(
            {
                'patient_id': record.patient_id,
                'kind': kind,
                'names': sorted(record.names),
                'birth_dates': sorted(record.birth_dates),
                'reasons': reasons,
            }
        )
    return out


def _shared_study_uids(records):
    owners = {}
    for record in records:
        for uid in record.study_uids:
            owners.setdefault(uid, set()).add(record.patient_id)
    return [
        {'study_instance_uid': uid, 'patient_ids': sorted(pids)}
        for uid, pids in sorted(owners.items())
        if len(pids) > 1
    ]
