# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# ruff: noqa: RUF001  (names in Cyrillic, Greek and other scripts are the point of this file)
"""Synthetic clinic patient lists with ground truth, for the duplicate-patient matcher.

Deterministic for a given seed. Every record is one PatientID (one study) as a dictionary keyed by
DICOM keywords (PatientID, PatientName, PatientBirthDate, PatientSex, OtherPatientIDs, StudyDate,
InstitutionName, StudyInstanceUID). The ground truth says which PatientIDs are the same person.

Duplicates (re-registrations under a new PatientID) carry one or two *variations*: ``exact``,
``name_typo``, ``swapped_order``, ``accents``, ``format`` (free text, upper case, titles, comma),
``hyphen_space``, ``script`` (Cyrillic/Greek written in Latin letters by another convention, a
Japanese name with only its alphabetic group), ``missing_birth_date``, ``partial_birth_date``,
``day_month_swap``, ``date_typo``, ``other_ids``.

Look-alikes (different people the matcher must keep apart): ``twins`` (same surname and birth date,
different given name), ``parent_child`` (same full name, 20-40 years apart, sometimes Jr/Sr),
``same_name`` (a common full name, another birth date), ``same_birth_date_surname`` (same surname and
birth date, another given name, not twins).

Command line::

    python tests/tools/synth_patients.py --records 1000 --seed 7 --json out.json [--dicom DIR]
"""

import argparse
import json
import random
import sys
import unicodedata

# (family, sex or '' for both) — Latin-script surnames of several languages, with accents
SURNAMES = [
    'Smith',
    'Johnson',
    'Brown',
    'Williams',
    'Taylor',
    'Walker',
    'García',
    'Martínez',
    'López',
    'González',
    'Rodríguez',
    'Fernández',
    'Pérez',
    'Sánchez',
    'Jiménez',
    'Muñoz',
    'Müller',
    'Schmidt',
    'Schneider',
    'Fischer',
    'Weber',
    'Meyer',
    'Wagner',
    'Becker',
    'Schäfer',
    'Koch',
    'Hoffmann',
    'Dubois',
    'Lefèvre',
    'Moreau',
    'Laurent',
    'Girard',
    'Bonnet',
    'Dupont',
    'Rousseau',
    'Rossi',
    'Russo',
    'Ferrari',
    'Esposito',
    'Bianchi',
    'Romano',
    'Colombo',
    'Kowalski',
    'Nowak',
    'Wiśniewski',
    'Wójcik',
    'Kowalczyk',
    'Lewandowski',
    'Zieliński',
    'Dvořák',
    'Novák',
    'Svoboda',
    'Černý',
    'Procházka',
    'Nielsen',
    'Jensen',
    'Hansen',
    'Andersson',
    'Johansson',
    'Öberg',
    'Lindström',
    'Silva',
    'Santos',
    'Ferreira',
    'Gonçalves',
    'Conceição',
    'Yılmaz',
    'Kaya',
    'Demir',
    'Şahin',
    'Çelik',
    'Öztürk',
    'de Vries',
    'van den Berg',
    'Jansen',
    'Bakker',
    "O'Brien",
    'Murphy',
    'Kelly',
    'Nagy',
    'Horváth',
    'Kovács',
    'Tóth',
    'Szabó',
    'Popescu',
    'Ionescu',
    'García-López',
    'Martín-Sánchez',
    'Pereira da Costa',
    'Jean-Baptiste',
    'Nguyen',
    'Tran',
    'Kim',
    'Park',
]
# stems and endings that build many more realistic surnames (Zipf-like tail of a real clinic)
SURNAME_PARTS = [
    (
        [
            'Kowal',
            'Wiśni',
            'Lewand',
            'Zieli',
            'Szyman',
            'Woźni',
            'Dąbrow',
            'Kozł',
            'Jank',
            'Grab',
            'Pawł',
            'Michal',
            'Kwiat',
            'Krawcz',
            'Piotr',
            'Wiecz',
            'Sobczak',
            'Majewsk',
            'Olsz',
            'Jaworsk',
        ],
        ['ski', 'ska', 'czyk', 'ewicz', 'iak', 'owski', 'owska', 'ek'],
    ),
    (
        [
            'Berg',
            'Lind',
            'Hof',
            'Stein',
            'Rosen',
            'Wald',
            'Baum',
            'Feld',
            'Kirch',
            'Brunn',
            'Eich',
            'Gold',
            'Schön',
            'Weiß',
            'Kling',
            'Hart',
            'Stahl',
            'Ober',
            'Neu',
            'Groß',
            'Lehm',
            'Acker',
            'Mühl',
            'Rieg',
        ],
        ['mann', 'er', 'berger', 'feld', 'hauser', 'inger', 'meier', 'bach', 'ner', 'thal', 'hofer', 'huber'],
    ),
    (
        ['Sjö', 'Ny', 'Holm', 'Ek', 'Ström', 'Dahl', 'Sand', 'Fors', 'Lund', 'Berg', 'Åker', 'Häll'],
        ['qvist', 'ström', 'gren', 'berg', 'lund', 'holm', 'dahl', 'stedt', 'ling', 'man'],
    ),
    (
        [
            'Fernánd',
            'Rodrígu',
            'Gonzál',
            'Hernánd',
            'Ramír',
            'Álvar',
            'Domíngu',
            'Vásqu',
            'Márqu',
            'Gutiérr',
            'Sánch',
            'Martín',
            'Díaz',
            'Suár',
            'Ménd',
            'Muñ',
            'Ibáñ',
            'Núñ',
        ],
        ['ez', 'es'],
    ),
    (
        [
            'Ivan',
            'Petr',
            'Nikol',
            'Jovan',
            'Mark',
            'Stojan',
            'Dragan',
            'Milan',
            'Pavl',
            'Stef',
            'Radov',
            'Bogdan',
            'Lazar',
            'Vuk',
            'Simon',
            'Đorđ',
        ],
        ['ović', 'ić', 'enko', 'ovski', 'ev', 'evski', 'ovich'],
    ),
    (
        ['Mac', 'Mc', "O'"],
        [
            'Donald',
            'Carthy',
            'Sullivan',
            'Connor',
            'Neill',
            'Kenzie',
            'Gregor',
            'Leod',
            'Bride',
            'Mahon',
            'Kay',
            'Intyre',
            'Laughlin',
            'Dermott',
            'Grath',
        ],
    ),
    (
        [
            'Bell',
            'Ross',
            'Marin',
            'Gall',
            'Fontan',
            'Serr',
            'Cost',
            'Ricc',
            'Brun',
            'Mor',
            'Gentil',
            'Lombard',
            'Barbier',
            'Caruso',
            'Vitale',
            'Santor',
        ],
        ['ini', 'elli', 'etti', 'one', 'ucci', 'ato', 'esi', 'otti'],
    ),
    (
        ['Kara', 'Ak', 'Yıldız', 'Aydın', 'Öz', 'Kılıç', 'Doğan', 'Arslan', 'Koç', 'Kurt'],
        ['', 'oğlu', 'türk', 'can', 'han', 'er'],
    ),
]
MALE = [
    'James',
    'John',
    'Michael',
    'David',
    'Robert',
    'William',
    'José',
    'Juan',
    'Carlos',
    'Luis',
    'Javier',
    'François',
    'Jérôme',
    'André',
    'Jean-Pierre',
    'Mathéo',
    'Hans',
    'Jürgen',
    'Lukas',
    'Maximilian',
    'Stefan',
    'Giuseppe',
    'Marco',
    'Luca',
    'Łukasz',
    'Paweł',
    'Piotr',
    'Krzysztof',
    'Tomáš',
    'Jiří',
    'Søren',
    'Lars',
    'Björn',
    'João',
    'Gonçalo',
    'Mehmet',
    'Mustafa',
    'Çağrı',
    'Pieter',
    'Seán',
    'Patrick',
    'László',
    'Zoltán',
    'Andrei',
    'Mihai',
    'Minh',
    'Jae-won',
    'Omar',
    'Kwame',
    'Arjun',
]
FEMALE = [
    'Mary',
    'Sarah',
    'Emma',
    'Olivia',
    'Charlotte',
    'María',
    'Lucía',
    'Carmen',
    'Sofía',
    'Pilar',
    'Anaïs',
    'Élodie',
    'Chloé',
    'Marie-Claire',
    'Brigitte',
    'Anna',
    'Lena',
    'Hannah',
    'Ursula',
    'Giulia',
    'Francesca',
    'Chiara',
    'Agnieszka',
    'Małgorzata',
    'Zofia',
    'Kateřina',
    'Tereza',
    'Ingrid',
    'Åsa',
    'Sigrid',
    'Inês',
    'Beatriz',
    'Ayşe',
    'Zeynep',
    'Fatma',
    'Saoirse',
    'Siobhán',
    'Réka',
    'Zsófia',
    'Ioana',
    'Elena',
    'Linh',
    'Ji-woo',
    'Amina',
    'Priya',
    'Yasmin',
    'Noor',
    'Freya',
]
COMMON_NAMES = [
    ('Smith', 'John', 'M'),
    ('García', 'María', 'F'),
    ('Müller', 'Anna', 'F'),
    ('Nowak', 'Piotr', 'M'),
    ('Rossi', 'Marco', 'M'),
    ('Silva', 'Ana', 'F'),
    ('Nguyen', 'Minh', 'M'),
    ('Kim', 'Ji-woo', 'F'),
]
# (native, Latin as another clinic would type it); Russian female surnames add -a
CYR_SURNAMES = [
    ('Иванов', 'Ivanov'),
    ('Смирнов', 'Smirnov'),
    ('Кузнецов', 'Kuznetsov'),
    ('Попов', 'Popov'),
    ('Соколов', 'Sokolov'),
    ('Лебедев', 'Lebedev'),
    ('Козлов', 'Kozlov'),
    ('Новиков', 'Novikov'),
    ('Морозов', 'Morozov'),
    ('Петров', 'Petrov'),
    ('Волков', 'Volkov'),
    ('Фёдоров', 'Fedorov'),
]
CYR_MALE = [
    ('Иван', 'Ivan'),
    ('Алексей', 'Alexey'),
    ('Дмитрий', 'Dmitry'),
    ('Сергей', 'Sergey'),
    ('Андрей', 'Andrey'),
    ('Михаил', 'Mikhail'),
    ('Николай', 'Nikolay'),
]
CYR_FEMALE = [
    ('Ольга', 'Olga'),
    ('Наталья', 'Natalia'),
    ('Татьяна', 'Tatiana'),
    ('Екатерина', 'Ekaterina'),
    ('Анна', 'Anna'),
    ('Юлия', 'Yulia'),
]
GRK_SURNAMES = [
    ('Βασιλείου', 'Vasileiou'),
    ('Νικολάου', 'Nikolaou'),
    ('Γεωργίου', 'Georgiou'),
    ('Οικονόμου', 'Oikonomou'),
    ('Δημητρίου', 'Dimitriou'),
    ('Ιωάννου', 'Ioannou'),
    ('Παπαδάκη', 'Papadaki'),
    ('Αντωνίου', 'Antoniou'),
]
GRK_MALE = [
    ('Γιώργος', 'Giorgos'),
    ('Δημήτρης', 'Dimitris'),
    ('Νίκος', 'Nikos'),
    ('Κώστας', 'Kostas'),
    ('Γιάννης', 'Giannis'),
]
GRK_FEMALE = [
    ('Μαρία', 'Maria'),
    ('Ελένη', 'Eleni'),
    ('Αικατερίνη', 'Aikaterini'),
    ('Σοφία', 'Sofia'),
    ('Δέσποινα', 'Despoina'),
]
JP_SURNAMES = [
    ('山田', 'Yamada', 'やまだ'),
    ('佐藤', 'Sato', 'さとう'),
    ('鈴木', 'Suzuki', 'すずき'),
    ('高橋', 'Takahashi', 'たかはし'),
    ('田中', 'Tanaka', 'たなか'),
    ('渡辺', 'Watanabe', 'わたなべ'),
]
JP_MALE = [
    ('太郎', 'Taro', 'たろう'),
    ('健', 'Ken', 'けん'),
    ('翔太', 'Shota', 'しょうた'),
    ('大輔', 'Daisuke', 'だいすけ'),
]
JP_FEMALE = [
    ('花子', 'Hanako', 'はなこ'),
    ('由美', 'Yumi', 'ゆみ'),
    ('さくら', 'Sakura', 'さくら'),
    ('美咲', 'Misaki', 'みさき'),
]
# other scripts: native only (the matcher compares them as script text)
OTHER_SCRIPTS = [
    (['כהן', 'לוי', 'מזרחי', 'פרץ', 'ביטון', 'אברהם'], ['דוד', 'יוסף', 'משה', 'אברהם'], ['שרה', 'רחל', 'מרים', 'נועה']),
    (
        ['حداد', 'خوري', 'منصور', 'عيسى', 'نصر', 'سليمان'],
        ['محمد', 'علي', 'أحمد', 'يوسف'],
        ['فاطمة', 'مريم', 'ليلى', 'نور'],
    ),
    (['สมบูรณ์', 'ใจดี', 'ศรีสุข', 'วงศ์ไทย'], ['สมชาย', 'ประยุทธ', 'วิชัย'], ['มาลี', 'สุดา', 'พรทิพย์']),
]
INSTITUTIONS = ['Clinique Dentaire du Lac', 'Zahnarztpraxis Dr. Weiß', 'Smile Studio Dental']
TITLES = ['Dr.', 'Mr.', 'Mrs.', 'Prof.', 'Herr', 'Frau', 'Mme']

VARIATIONS = (
    'exact',
    'name_typo',
    'swapped_order',
    'accents',
    'format',
    'hyphen_space',
    'script',
    'missing_birth_date',
    'partial_birth_date',
    'day_month_swap',
    'date_typo',
    'other_ids',
)
LOOKALIKES = ('twins', 'parent_child', 'same_name', 'same_birth_date_surname')
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _strip_accents(text):
    return (
        ''.join(ch for ch in unicodedata.normalize('NFKD', text) if not unicodedata.combining(ch))
        .replace('ł', 'l')
        .replace('Ł', 'L')
        .replace('ı', 'i')
        .replace('ø', 'o')
    )


class _Person:
    __slots__ = (
        'alpha',
        'birth',
        'family',
        'given',
        'ideo',
        'latin_family',
        'latin_given',
        'pid',
        'script',
        'sex',
        'suffix',
    )

    def __init__(
        self, pid, family, given, sex, birth, script='latin', latin_family=None, latin_given=None, ideo=None, suffix=''
    ):
        self.pid = pid
        self.family, self.given, self.sex, self.birth = family, given, sex, birth
        self.script = script
        self.latin_family, self.latin_given = latin_family, latin_given
        self.ideo = ideo  # (ideographic, phonetic) groups for Japanese names
        self.suffix = suffix


class Generator:
    """Makes records; ``generate()`` is the convenient entry point."""

    def __init__(self, seed=1):
        self.rng = random.Random(seed)
        self.seed = seed
        self.records = []
        self.truth = {}
        self.variation = {}
        self.lookalike_pairs = []
        self._next_person = 0
        self._next_id = 0

    # -- helpers -----------------------------------------------------------------------------------
    def _new_pid(self):
        self._next_id += 1
        return f'P{self.seed:02d}{self._next_id:07d}'

    def _uid(self):
        return '2.25.' + str(self.rng.getrandbits(100))

    def _birth(self, lo=1930, hi=2020):
        year = self.rng.randint(lo, hi)
        month = self.rng.randint(1, 12)
        day = self.rng.randint(1, _DAYS[month - 1])
        return year, month, day

    def _person(self, script=None, sex=None):
        rng = self.rng
        self._next_person += 1
        if script is None:
            roll = rng.random()
            script = (
                'latin'
                if roll < 0.8
                else 'cyrillic'
                if roll < 0.87
                else 'greek'
                if roll < 0.92
                else ('japanese' if roll < 0.96 else 'other')
            )
        sex = sex or rng.choice('MF')
        birth = self._birth()
        pid = self._next_person
        if script == 'latin':
            if rng.random() < 0.6:
                stems, endings = rng.choice(SURNAME_PARTS)
                family = rng.choice(stems) + rng.choice(endings)
            else:
                family = rng.choice(SURNAMES)
            return _Person(pid, family, rng.choice(MALE if sex == 'M' else FEMALE), sex, birth)
        if script == 'cyrillic':
            fam = rng.choice(CYR_SURNAMES)
            giv = rng.choice(CYR_MALE if sex == 'M' else CYR_FEMALE)
            if sex == 'F':
                fam = (fam[0] + 'а', fam[1] + 'a')
            return _Person(pid, fam[0], giv[0], sex, birth, script, fam[1], giv[1])
        if script == 'greek':
            fam = rng.choice(GRK_SURNAMES)
            giv = rng.choice(GRK_MALE if sex == 'M' else GRK_FEMALE)
            return _Person(pid, fam[0], giv[0], sex, birth, script, fam[1], giv[1])
        if script == 'japanese':
            fam = rng.choice(JP_SURNAMES)
            giv = rng.choice(JP_MALE if sex == 'M' else JP_FEMALE)
            return _Person(pid, fam[1], giv[1], sex, birth, script, ideo=(fam[0] + '^' + giv[0], fam[2] + '^' + giv[2]))
        families, males, females = rng.choice(OTHER_SCRIPTS)
        return _Person(pid, rng.choice(families), rng.choice(males if sex == 'M' else females), sex, birth, 'other')

    def _pn(self, person, family=None, given=None):
        family = person.family if family is None else family
        given = person.given if given is None else given
        value = f'{family}^{given}'
        if person.suffix:
            value += '^^^' + person.suffix
        if person.script == 'latin' and self.rng.random() < 0.5:
            value = value.upper()
        if person.ideo:
            value += '=' + person.ideo[0] + '=' + person.ideo[1]
        return value

    @staticmethod
    def _date(birth):
        return '{:04d}{:02d}{:02d}'.format(*birth)

    def _emit(self, person, name, birth_date, variation=None, other_ids=''):
        pid = self._new_pid()
        rng = self.rng
        self.records.append(
            {
                'PatientID': pid,
                'PatientName': name,
                'PatientBirthDate': birth_date,
                'PatientSex': person.sex,
                'OtherPatientIDs': other_ids,
                'StudyDate': f'{rng.randint(2005, 2025):04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}',
                'InstitutionName': rng.choice(INSTITUTIONS),
                'StudyInstanceUID': self._uid(),
            }
        )
        self.truth[pid] = person.pid
        if variation:
            self.variation[pid] = variation
        return pid

    def _typo(self, word):
        rng = self.rng
        if len(word) < 4:
            return word + rng.choice('aeilnorst')
        pos = rng.randint(1, len(word) - 2) if rng.random() < 0.9 else 0
        op = rng.choice(('sub', 'del', 'ins', 'swap'))
        letters = 'abcdefghijklmnopqrstuvwxyz'
        if op == 'sub':
            ch = rng.choice(letters.replace(word[pos].lower(), ''))
            ch = ch.upper() if word[pos].isupper() else ch
            return word[:pos] + ch + word[pos + 1 :]
        if op == 'del':
            return word[:pos] + word[pos + 1 :]
        if op == 'ins':
            return word[:pos] + rng.choice(letters) + word[pos:]
        if word[pos] == word[pos + 1]:
            return word[:pos] + word[pos + 2 :] if len(word) > 4 else word + 'e'
        return word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]

    # -- duplicates --------------------------------------------------------------------------------
    def _applicable(self, person):
        ok = [
            'exact',
            'name_typo',
            'swapped_order',
            'format',
            'missing_birth_date',
            'partial_birth_date',
            'date_typo',
            'other_ids',
        ]
        if person.script == 'latin' and _strip_accents(person.family + person.given) != person.family + person.given:
            ok.append('accents')
        if person.script == 'latin' and ('-' in person.family + person.given or ' ' in person.family):
            ok.append('hyphen_space')
        if person.script in ('cyrillic', 'greek', 'japanese'):
            ok.append('script')
        if person.birth[2] <= 12 and person.birth[2] != person.birth[1]:
            ok.append('day_month_swap')
        if person.script == 'other':
            ok = [v for v in ok if v not in ('name_typo', 'format', 'swapped_order')]
        return ok

    def _duplicate(self, person, first_pid):
        rng = self.rng
        applicable = self._applicable(person)
        primary = rng.choice(applicable)
        variations = [primary]
        if primary != 'exact' and rng.random() < 0.25:
            second = rng.choice(applicable)
            dates = {'missing_birth_date', 'partial_birth_date', 'day_month_swap', 'date_typo'}
            if second not in variations and second != 'exact' and not (primary in dates and second in dates):
                variations.append(second)
        family, given = person.family, person.given
        swapped = False
        name = None
        birth = self._date(person.birth)
        other_ids = ''
        for var in variations:
            if var == 'name_typo':
                if rng.random() < 0.6:
                    family = self._typo(family)
                else:
                    given = self._typo(given)
            elif var == 'swapped_order':
                swapped = True
            elif var == 'accents':
                family, given = _strip_accents(family), _strip_accents(given)
            elif var == 'hyphen_space':
                family = family.replace('-', ' ') if '-' in family else family.replace(' ', '')
                given = given.replace('-', rng.choice((' ', ''))) if '-' in given else given
            elif var == 'script':
                if person.script == 'japanese':
                    person_ideo, person.ideo = person.ideo, None
                    name = self._pn(person, family, given).upper()
                    person.ideo = person_ideo
                else:
                    family, given = person.latin_family, person.latin_given
            elif var == 'missing_birth_date':
                birth = ''
            elif var == 'partial_birth_date':
                birth = birth[:4] if rng.random() < 0.5 else birth[:6]
            elif var == 'day_month_swap' and len(birth) == 8:
                birth = birth[:4] + birth[6:8] + birth[4:6]
            elif var == 'date_typo' and len(birth) == 8:
                birth = self._date_typo(person.birth)
            elif var == 'other_ids':
                other_ids = first_pid
        if name is None:
            if 'format' in variations:
                style = rng.choice(('free', 'comma', 'title', 'upper'))
                if style == 'free':
                    name = f'{given} {family}'
                elif style == 'comma':
                    name = f'{family}, {given}'
                elif style == 'title':
                    name = f'{family}^{given}^^{rng.choice(TITLES)}'
                else:
                    name = f'{family.upper()}^{given.upper()}'
            elif swapped:
                name = f'{given}^{family}'
            else:
                ideo = person.ideo if person.script == 'japanese' and 'name_typo' not in variations else None
                saved, person.ideo = person.ideo, ideo
                name = self._pn(person, family, given)
                person.ideo = saved
        return self._emit(person, name, birth, '+'.join(variations), other_ids)

    def _date_typo(self, birth):
        rng = self.rng
        year, month, day = birth
        for _attempt in range(20):
            pos = rng.choice((3, 5, 6, 7))  # last year digit, month units, day digits
            digits = list(self._date(birth))
            digits[pos] = rng.choice('0123456789'.replace(digits[pos], ''))
            text = ''.join(digits)
            y, m, d = int(text[:4]), int(text[4:6]), int(text[6:])
            if 1 <= m <= 12 and 1 <= d <= _DAYS[m - 1] and (y, m, d) != (year, month, day):
                return text
        return self._date((year, month, day + 1 if day < 28 else day - 1))

    # -- look-alikes -------------------------------------------------------------------------------
    def _lookalike(self, person, first_pid, kind):
        rng = self.rng
        self._next_person += 1
        if kind == 'twins' or kind == 'same_birth_date_surname':
            sex = rng.choice('MF') if kind == 'twins' else person.sex
            pool = {'latin': MALE if sex == 'M' else FEMALE}.get(person.script)
            if pool is None:
                return None
            given = rng.choice([g for g in pool if g[0] != person.given[0]])
            birth = person.birth
            other = _Person(self._next_person, person.family, given, sex, birth, person.script)
        elif kind == 'parent_child':
            gap = rng.randint(20, 40)
            older = rng.random() < 0.5
            year = person.birth[0] - gap if older else person.birth[0] + gap
            if year > 2024:
                year = person.birth[0] - gap
            birth = (year, rng.randint(1, 12), rng.randint(1, 28))
            other = _Person(
                self._next_person,
                person.family,
                person.given,
                person.sex,
                birth,
                person.script,
                person.latin_family,
                person.latin_given,
                person.ideo,
            )
            if person.script == 'latin' and rng.random() < 0.3:
                other.suffix = 'Sr' if older else 'Jr'
        else:  # same_name: someone else with the same full name
            other = _Person(
                self._next_person,
                person.family,
                person.given,
                person.sex,
                self._birth(),
                person.script,
                person.latin_family,
                person.latin_given,
                person.ideo,
            )
        pid = self._emit(other, self._pn(other), self._date(other.birth))
        self.lookalike_pairs.append((first_pid, pid, kind))
        return pid

    # -- entry point -------------------------------------------------------------------------------
    def run(self, n_records, dup_rate=0.25, lookalike_rate=0.08, common_rate=0.02):
        rng = self.rng
        while len(self.records) < n_records:
            if rng.random() < common_rate:
                fam, giv, sex = rng.choice(COMMON_NAMES)
                self._next_person += 1
                person = _Person(self._next_person, fam, giv, sex, self._birth())
            else:
                person = self._person()
            first = self._emit(person, self._pn(person), self._date(person.birth))
            if rng.random() < dup_rate:
                for _copy in range(1 if rng.random() < 0.8 else 2):
                    self._duplicate(person, first)
            if rng.random() < lookalike_rate:
                kind = rng.choice(LOOKALIKES)
                self._lookalike(person, first, kind)
        del self.records[n_records:]
        kept = {r['PatientID'] for r in self.records}
        self.truth = {k: v for k, v in self.truth.items() if k in kept}
        self.variation = {k: v for k, v in self.variation.items() if k in kept}
        self.lookalike_pairs = [p for p in self.lookalike_pairs if p[0] in kept and p[1] in kept]
        return {
            'seed': self.seed,
            'records': self.records,
            'truth': self.truth,
            'variation': self.variation,
            'lookalike_pairs': self.lookalike_pairs,
        }


def generate(n_records=1000, seed=1, dup_rate=0.25, lookalike_rate=0.08, common_rate=0.02):
    """Return ``{'records', 'truth' (PatientID -> person), 'variation' (PatientID -> label), 'lookalike_pairs'}``."""
    return Generator(seed).run(n_records, dup_rate, lookalike_rate, common_rate)


def true_pairs(truth):
    """Set of sorted PatientID pairs that belong to the same person."""
    by_person = {}
    for pid, person in truth.items():
        by_person.setdefault(person, []).append(pid)
    pairs = set()
    for pids in by_person.values():
        pids.sort()
        for i in range(len(pids)):
            for j in range(i + 1, len(pids)):
                pairs.add((pids[i], pids[j]))
    return pairs


def write_dicom(records, outdir, seed=1):
    """Write one tiny DICOM file (8x8 secondary capture, fresh UIDs) per record. Returns the paths."""
    import os

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    secondary_capture = '1.2.840.10008.5.1.4.1.1.7'
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for index, rec in enumerate(records):
        sop_uid = generate_uid(entropy_srcs=[str(seed), rec['PatientID'], 'sop', str(index)])
        series_uid = generate_uid(entropy_srcs=[str(seed), rec['PatientID'], 'series', str(index)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = secondary_capture
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = 'ISO_IR 192'
        ds.SOPClassUID = secondary_capture
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = rec['StudyInstanceUID']
        ds.SeriesInstanceUID = series_uid
        ds.PatientID = rec['PatientID']
        ds.PatientName = rec['PatientName']
        ds.PatientBirthDate = rec['PatientBirthDate']
        ds.PatientSex = rec['PatientSex']
        if rec.get('OtherPatientIDs'):
            ds.OtherPatientIDs = rec['OtherPatientIDs']
        ds.StudyDate = rec['StudyDate']
        ds.InstitutionName = rec['InstitutionName']
        ds.Modality = 'OT'
        ds.StudyID = '1'
        ds.SeriesNumber = 1
        ds.InstanceNumber = 1
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = 'MONOCHROME2'
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = bytes((index + i) % 256 for i in range(64))
        path = os.path.join(outdir, f'{index:06d}.dcm')
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=1000, help='number of records (PatientIDs)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--dup-rate', type=float, default=0.25, help='share of people registered again')
    parser.add_argument('--lookalike-rate', type=float, default=0.08, help='share of people with a look-alike')
    parser.add_argument('--json', help='write records and ground truth to this JSON file (default: stdout)')
    parser.add_argument('--dicom', help='also write one DICOM file per record into this folder')
    args = parser.parse_args(argv)
    data = generate(args.records, args.seed, args.dup_rate, args.lookalike_rate)
    text = json.dumps(data, ensure_ascii=False, indent=1)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as handle:
            handle.write(text)
    else:
        sys.stdout.write(text + '\n')
    if args.dicom:
        write_dicom(data['records'], args.dicom, args.seed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
