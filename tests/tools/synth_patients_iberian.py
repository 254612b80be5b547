# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A second, independent synthetic clinic for the duplicate-patient matcher: held-out data.

It was written before the matcher was tuned (issue 18) and its rates are never changed to suit the
matcher. It was only checked against at first; the recall work of issue 18 looked at its misses, so the matcher
is now tuned against it too and it is no longer held out (the held-out set is the evaluation kept outside the
project). Same output shape as
``synth_patients.generate()`` (``records``, ``truth``, ``variation``, ``lookalike_pairs``).

Population: a clinic in Spain/Portugal with immigrant patients. Spanish names with two surnames
(``GARCÍA LÓPEZ^JOSÉ MARÍA``), Portuguese names whose last surname is the main one (``Ana Sofia
Ferreira da Silva``), German names with umlauts (``Müller``/``Mueller``/``MULLER``, ``Groß``/``Gross``),
Arabic names in several Latin spellings (``Mohammed``/``Muhammad``/``Mohamed``), Chinese names in pinyin
and in older or Cantonese spellings (``Zhang``/``Chang``, ``Xu``/``Hsu``), family name first or last.

Each person is registered first by the practice software (``^``-separated DICOM name, all fields); a
re-registration under a new PatientID comes from an imaging station whose operator types the name
(free text, ``SURNAMES, GIVEN`` or ``^``-separated, upper or mixed case). Error model, per re-registration,
from published record-linkage studies (the rates are ours, chosen once within the ranges reported):

* Damerau (1964, Commun. ACM 7:171) and Pollock & Zamora (1984, Commun. ACM 27:358): about 80 % or more of
  misspellings are a single insertion, deletion, substitution or transposition; deletions are the most
  frequent. Here: a typo in a name in 12 % of re-registrations, single-edit 85 % of the time
  (deletion 35 %, substitution 30 %, insertion 20 %, transposition 15 %), else two edits.
* Lariscy (2011, J Aging Health 23:1263) on linkage of Hispanic records: compound and double surnames
  are recorded inconsistently (one surname dropped, hyphenated, order changed), which lowers linkage
  rates. Here: second surname dropped 15 %, joined with a hyphen 5 %, particles (``de``, ``da``) dropped
  or glued 5 %; compound given names cut to the first part 10 %.
* Winkler (1990, Proc. Section on Survey Research Methods, ASA; "String comparator metrics and enhanced
  decision rules in the Fellegi-Sunter model of record linkage") and Christen & Pudjijono (2009, PAKDD,
  "Accurate synthetic generation of realistic personal information"): phonetic and transliteration
  variants, nicknames and swapped name fields. Here: another transliteration or spelling of the same
  name (umlaut, Arabic, Chinese) whenever the population has one, 30 % of those re-registrations;
  given/family swapped 5 %; a nickname (``Pepe`` for ``José``) 2 %.
* Grannis, Overhage & McDonald (2002, Proc. AMIA Symp: 305, "Analysis of identifier performance using a
  deterministic linkage algorithm"): identifiers are missing or disagree on a share of true matches, birth
  date among them; the birth-date errors modelled are the single-component ones seen in that literature
  (one digit, day and month transposed, a year off by one). Here:
  birth date missing 10 %, one-digit error 3 %, day/month swap 2 % (when both at most 12), year ±1 2 %,
  sex missing 5 %, sex wrong 0.5 %.

Look-alikes (different people): twins and siblings (same surnames, different given names; siblings
1 to 6 years apart), a parent and a child who share the father's first surname and the given name
but not the second surname (the Iberian naming rule), namesakes with a common full name, and
spouses (same family name in the German and Chinese part, different given names and sex).

Evidence beside the demographics: each station writes its own InstitutionName/StationName and
IssuerOfPatientID; a re-registration on the same visit (40 %) has the practice record's StudyDate.
OtherPatientIDs hold the practice ID in 5 % of re-registrations.

Command line::

    python tests/tools/synth_patients_iberian.py --records 2000 --seed 3 --json out.json
"""

import argparse
import json
import random
import sys
import unicodedata

ES_SURNAMES = [
    'García', 'Fernández', 'González', 'Rodríguez', 'López', 'Martínez', 'Sánchez', 'Pérez', 'Gómez',
    'Martín', 'Jiménez', 'Ruiz', 'Hernández', 'Díaz', 'Moreno', 'Muñoz', 'Álvarez', 'Romero', 'Alonso',
    'Gutiérrez', 'Navarro', 'Torres', 'Domínguez', 'Vázquez', 'Ramos', 'Gil', 'Ramírez', 'Serrano',
    'Blanco', 'Molina', 'Morales', 'Suárez', 'Ortega', 'Delgado', 'Castro', 'Ortiz', 'Rubio', 'Marín',
    'Sanz', 'Núñez', 'Iglesias', 'Medina', 'Garrido', 'Cortés', 'Castillo', 'Santos', 'Lozano',
    'Guerrero', 'Cano', 'Prieto', 'Méndez', 'Cruz', 'Calvo', 'Gallego', 'Vidal', 'León', 'Márquez',
    'Herrera', 'Peña', 'Flores', 'Cabrera', 'Campos', 'Vega', 'Fuentes', 'Carrasco', 'Diez', 'Caballero',
    'Reyes', 'Nieto', 'Aguilar', 'Pascual', 'Santana', 'Herrero', 'Lorenzo', 'Montero', 'Hidalgo',
    'Giménez', 'Ibáñez', 'Ferrer', 'Durán', 'Santiago', 'Benítez', 'Mora', 'Vicente', 'Vargas', 'Arias',
    'Carmona', 'Crespo', 'Román', 'Pastor', 'Soto', 'Sáez', 'Velasco', 'Moya', 'Soler', 'Parra',
    'Esteban', 'Bravo', 'Gallardo', 'Rojas', 'de la Fuente', 'del Río', 'de la Cruz', 'San Martín',
    'Echeverría', 'Goikoetxea', 'Etxeberria', 'Urrutia', 'Aguirre', 'Zubizarreta', 'Arrieta', 'Olabarria',
    'Puigdemont', 'Casals', 'Vilanova', 'Riera', 'Font', 'Pujol', 'Roca', 'Sala', 'Bosch', 'Castells',
]  # fmt: skip
PT_SURNAMES = [
    'Silva', 'Santos', 'Ferreira', 'Pereira', 'Oliveira', 'Costa', 'Rodrigues', 'Martins', 'Jesus',
    'Sousa', 'Fernandes', 'Gonçalves', 'Gomes', 'Lopes', 'Marques', 'Alves', 'Almeida', 'Ribeiro',
    'Pinto', 'Carvalho', 'Teixeira', 'Moreira', 'Correia', 'Mendes', 'Nunes', 'Soares', 'Vieira',
    'Monteiro', 'Cardoso', 'Rocha', 'Raposo', 'Neves', 'Coelho', 'Cruz', 'Cunha', 'Pires', 'Ramos',
    'Reis', 'Simões', 'Antunes', 'Matos', 'Fonseca', 'Machado', 'Araújo', 'Barbosa', 'Tavares',
    'Lourenço', 'Castro', 'Figueiredo', 'Azevedo', 'Freitas', 'Magalhães', 'Baptista', 'Conceição',
]  # fmt: skip
PT_PARTICLES = ['da', 'dos', 'de', 'das', 'do']
ES_MALE = [
    'José', 'Antonio', 'Manuel', 'Francisco', 'David', 'Juan', 'Javier', 'Daniel', 'José Antonio',
    'Francisco Javier', 'José Luis', 'Carlos', 'Jesús', 'Alejandro', 'Miguel', 'José Manuel', 'Rafael',
    'Pedro', 'Ángel', 'Miguel Ángel', 'Pablo', 'Fernando', 'Sergio', 'Luis', 'Jorge', 'Alberto',
    'Juan Carlos', 'Álvaro', 'Diego', 'Adrián', 'Raúl', 'Enrique', 'Ramón', 'Iñaki', 'Jordi', 'Xavier',
    'Íker', 'Andrés', 'Joaquín', 'Santiago', 'Ignacio', 'Rubén', 'Óscar', 'Gonzalo', 'Tomás', 'Hugo',
]  # fmt: skip
ES_FEMALE = [
    'María Carmen', 'María', 'Carmen', 'Ana María', 'Laura', 'María Pilar', 'María Dolores', 'Isabel',
    'Josefa', 'Ana', 'María Teresa', 'Cristina', 'Marta', 'Lucía', 'María Ángeles', 'Francisca',
    'Antonia', 'Dolores', 'Sara', 'Paula', 'Elena', 'María Isabel', 'Raquel', 'Rosa María', 'Pilar',
    'Concepción', 'Manuela', 'María José', 'Mercedes', 'Beatriz', 'Nuria', 'Silvia', 'Julia', 'Irene',
    'Montserrat', 'Rocío', 'Patricia', 'Alba', 'Andrea', 'Inmaculada', 'Begoña', 'Ainhoa', 'Núria',
    'Leire', 'Itziar', 'Natalia', 'Alicia', 'Lorena', 'Sonia', 'Yolanda',
]  # fmt: skip
PT_MALE = [
    'João', 'José', 'António', 'Francisco', 'Manuel', 'Pedro', 'Luís', 'Tiago', 'Rui', 'Miguel',
    'Paulo', 'Ricardo', 'Nuno', 'Bruno', 'Duarte', 'Gonçalo', 'Rodrigo', 'Afonso', 'João Pedro', 'Vasco',
]  # fmt: skip
PT_FEMALE = [
    'Maria', 'Ana', 'Joana', 'Sofia', 'Inês', 'Beatriz', 'Mariana', 'Catarina', 'Ana Sofia', 'Rita',
    'Marta', 'Leonor', 'Margarida', 'Filipa', 'Maria João', 'Teresa', 'Conceição', 'Fátima', 'Raquel',
]  # fmt: skip
NICKNAMES = {
    'José': 'Pepe', 'Francisco': 'Paco', 'Manuel': 'Manolo', 'Dolores': 'Lola', 'Concepción': 'Concha',
    'Josefa': 'Pepa', 'Jesús': 'Chus', 'Ignacio': 'Nacho', 'Enrique': 'Quique', 'Antonio': 'Toni',
    'Francisca': 'Paqui', 'Rosario': 'Charo', 'Mercedes': 'Merche', 'Guillermo': 'Guille',
}  # fmt: skip
DE_SURNAMES = [
    'Müller', 'Schröder', 'Schäfer', 'Köhler', 'Böhm', 'Groß', 'Weiß', 'Krüger', 'Jäger', 'Günther',
    'Möller', 'Schütz', 'Hübner', 'Würth', 'Förster', 'Fuchs', 'Wolf', 'Schmitt', 'Zimmermann',
    'Braun', 'Hartmann', 'Lange', 'Werner', 'Krause', 'Lehmann', 'Köster', 'Brückner', 'Strauß',
]  # fmt: skip
DE_MALE = ['Jürgen', 'Günter', 'Thomas', 'Michael', 'Andreas', 'Stefan', 'Jörg', 'Uwe', 'Klaus', 'Lukas']
DE_FEMALE = ['Gisela', 'Sabine', 'Ursula', 'Käthe', 'Monika', 'Petra', 'Brigitte', 'Jutta', 'Anna', 'Lena']
# German umlaut spellings: the letter, its transcription, the letter without its dots
UMLAUTS = {'ä': ('ae', 'a'), 'ö': ('oe', 'o'), 'ü': ('ue', 'u'), 'ß': ('ss', 'ss')}
# Arabic names: each person is given one spelling; a station may write another of the same set
AR_SURNAMES = [
    ('El-Amrani', 'Elamrani', 'Al Amrani'), ('Benali', 'Ben Ali', 'Ben-Ali'), ('El Idrissi', 'Idrissi', 'Elidrissi'),
    ('Haddad', 'Hadad', 'Al-Haddad'), ('Bouazza', 'Bouaza', 'Bu Azza'), ('Alaoui', 'El Alaoui', 'Alaui'),
    ('Mansour', 'Mansur', 'Mansoor'), ('Khalil', 'Khaleel', 'Halil'), ('Saleh', 'Salih', 'Saleh'),
    ('Hussein', 'Husain', 'Hussain'), ('Abdelrahman', 'Abdel Rahman', 'Abd al-Rahman'),
    ('Ouali', 'Wali', 'Ouali'), ('Chaoui', 'Shawi', 'Chaoui'), ('Tahiri', 'Taheri', 'Tahiri'),
    ('Rahmani', 'Rahmany', 'Rahmani'), ('Bennani', 'Benani', 'Bennani'),
]  # fmt: skip
AR_MALE = [
    ('Mohammed', 'Muhammad', 'Mohamed'), ('Ahmed', 'Ahmad', 'Ahmet'), ('Youssef', 'Yusuf', 'Yousef'),
    ('Omar', 'Umar', 'Omar'), ('Hassan', 'Hasan', 'Hassan'), ('Karim', 'Kareem', 'Karim'),
    ('Mustafa', 'Mostafa', 'Moustafa'), ('Abdullah', 'Abdallah', 'Abdellah'), ('Rachid', 'Rashid', 'Rachid'),
]  # fmt: skip
AR_FEMALE = [
    ('Fatima', 'Fatma', 'Fatimah'), ('Aicha', 'Aisha', 'Aysha'), ('Khadija', 'Khadidja', 'Khadijah'),
    ('Meryem', 'Maryam', 'Mariam'), ('Zineb', 'Zaynab', 'Zeinab'), ('Nadia', 'Nadiya', 'Nadia'),
    ('Samira', 'Sameera', 'Samira'), ('Leila', 'Layla', 'Laila'),
]  # fmt: skip
# Chinese family names: pinyin and an older (Wade-Giles) or Cantonese spelling
ZH_SURNAMES = [
    ('Wang', 'Wong'), ('Li', 'Lee'), ('Zhang', 'Chang'), ('Liu', 'Lau'), ('Chen', 'Chan'), ('Yang', 'Yeung'),
    ('Huang', 'Wong'), ('Zhao', 'Chao'), ('Wu', 'Ng'), ('Zhou', 'Chou'), ('Xu', 'Hsu'), ('Sun', 'Suen'),
    ('Zhu', 'Chu'), ('Gao', 'Kao'), ('Lin', 'Lam'), ('He', 'Ho'), ('Guo', 'Kuo'), ('Ma', 'Ma'),
    ('Luo', 'Lo'), ('Zheng', 'Cheng'), ('Xie', 'Hsieh'), ('Qian', 'Chien'),
]  # fmt: skip
ZH_GIVEN = [
    ('Wei', 'Wei'), ('Fang', 'Fong'), ('Xiaoming', 'Hsiao-Ming'), ('Jing', 'Ching'), ('Li', 'Lee'),
    ('Qiang', 'Chiang'), ('Yan', 'Yen'), ('Jun', 'Chun'), ('Xiuying', 'Hsiu-Ying'), ('Hui', 'Hwei'),
    ('Jianguo', 'Chien-Kuo'), ('Mei', 'Mei'), ('Zhiwei', 'Chih-Wei'), ('Lihua', 'Li-Hua'), ('Yong', 'Yung'),
]  # fmt: skip
STATIONS = [
    ('CLINICA DENTAL SOL', 'PANO01', 'PRACTICE'), ('CLINICA DENTAL SOL', 'CBCT1', 'CBCT'),
    ('CLINICA DENTAL SOL', 'IOS-2', 'SCANNER'), ('Clínica Dental Sol - Sala 2', 'RVG', 'RVG'),
    ('SOL DENTAL', 'CEPH', 'CEPH'),
]  # fmt: skip
COMMON = [
    ('García', 'López', 'María', 'F'), ('García', 'García', 'José', 'M'), ('Fernández', 'González', 'Antonio', 'M'),
    ('Rodríguez', 'Martínez', 'Carmen', 'F'), ('Silva', '', 'Maria', 'F'), ('Santos', '', 'João', 'M'),
    ('El-Amrani', '', 'Mohammed', 'M'), ('Wang', '', 'Wei', 'M'), ('Müller', '', 'Thomas', 'M'),
]  # fmt: skip
LOOKALIKES = ('twins', 'siblings', 'parent_child', 'namesake', 'spouses')
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _plain(text):
    return ''.join(ch for ch in unicodedata.normalize('NFKD', text) if not unicodedata.combining(ch))


class _Person:
    __slots__ = ('birth', 'given', 'given_alts', 'group', 'pid', 'sex', 'surname_alts', 'surnames')

    def __init__(self, pid, group, surnames, given, sex, birth, surname_alts=(), given_alts=()):
        self.pid, self.group, self.surnames, self.given = pid, group, list(surnames), given
        self.sex, self.birth = sex, birth
        self.surname_alts, self.given_alts = list(surname_alts), list(given_alts)


class Generator:
    """Makes records; ``generate()`` is the convenient entry point."""

    def __init__(self, seed=1):
        self.rng = random.Random(seed * 7919 + 18)
        self.seed = seed
        self.records = []
        self.truth = {}
        self.variation = {}
        self.lookalike_pairs = []
        self._next_person = 0
        self._next_id = 0

    # -- people ------------------------------------------------------------------------------------
    def _birth(self, lo=1935, hi=2020):
        rng = self.rng
        year = rng.randint(lo, hi)
        month = rng.randint(1, 12)
        return year, month, rng.randint(1, _DAYS[month - 1])

    def _zipf(self, items):
        """Pick from a list whose head is more common (rank-frequency of real surname lists)."""
        weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(items))]
        return self.rng.choices(items, weights)[0]

    def _person(self, group=None, sex=None, birth=None, surnames=None):
        rng = self.rng
        self._next_person += 1
        pid = self._next_person
        if group is None:
            group = rng.choices(('es', 'pt', 'de', 'ar', 'zh'), (0.62, 0.18, 0.07, 0.08, 0.05))[0]
        sex = sex or rng.choice('MF')
        birth = birth or self._birth()
        if group == 'es':
            given = self._zipf(ES_MALE if sex == 'M' else ES_FEMALE)
            return _Person(
                pid, group, surnames or [self._zipf(ES_SURNAMES), self._zipf(ES_SURNAMES)], given, sex, birth
            )
        if group == 'pt':
            given = self._zipf(PT_MALE if sex == 'M' else PT_FEMALE)
            if surnames is None:
                surnames = [self._zipf(PT_SURNAMES)]
                last = self._zipf(PT_SURNAMES)
                surnames.append((rng.choice(PT_PARTICLES) + ' ' + last) if rng.random() < 0.3 else last)
            return _Person(pid, group, surnames, given, sex, birth)
        if group == 'de':
            return _Person(
                pid,
                group,
                surnames or [rng.choice(DE_SURNAMES)],
                rng.choice(DE_MALE if sex == 'M' else DE_FEMALE),
                sex,
                birth,
            )
        if group == 'ar':
            fam = surnames or list(rng.choice(AR_SURNAMES))
            giv = list(rng.choice(AR_MALE if sex == 'M' else AR_FEMALE))
            return _Person(pid, group, [fam[0]], giv[0], sex, birth, fam[1:], giv[1:])
        fam = surnames or list(rng.choice(ZH_SURNAMES))
        giv = list(rng.choice(ZH_GIVEN))
        return _Person(pid, group, [fam[0]], giv[0], sex, birth, fam[1:], giv[1:])

    # -- records -----------------------------------------------------------------------------------
    def _new_pid(self, station):
        self._next_id += 1
        prefix = {'PRACTICE': 'H', 'CBCT': 'CB', 'SCANNER': 'IO', 'RVG': 'R', 'CEPH': 'C'}[station]
        return f'{prefix}{self.seed:02d}{self._next_id:06d}'

    def _emit(self, person, name, birth, sex, station, study_date, variation=None, other_ids=''):
        rng = self.rng
        institution, station_name, issuer = station
        pid = self._new_pid(issuer)
        self.records.append(
            {
                'PatientID': pid,
                'PatientName': name,
                'PatientBirthDate': birth,
                'PatientSex': sex,
                'OtherPatientIDs': other_ids,
                'IssuerOfPatientID': issuer,
                'StudyDate': study_date,
                'InstitutionName': institution,
                'StationName': station_name,
                'StudyInstanceUID': '2.25.' + str(rng.getrandbits(100)),
            }
        )
        self.truth[pid] = person.pid
        if variation:
            self.variation[pid] = variation
        return pid

    def _study_date(self):
        rng = self.rng
        return f'{rng.randint(2008, 2026):04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}'

    @staticmethod
    def _fmt(date):
        return '{:04d}{:02d}{:02d}'.format(*date)

    def _practice_name(self, person):
        family = ' '.join(person.surnames)
        if person.group == 'zh' and self.rng.random() < 0.5:
            return f'{family}^{person.given}'.upper()
        return f'{family}^{person.given}'.upper() if self.rng.random() < 0.6 else f'{family}^{person.given}'

    def _register(self, person):
        station = STATIONS[0]
        date = self._study_date()
        pid = self._emit(person, self._practice_name(person), self._fmt(person.birth), person.sex, station, date)
        return pid, date

    # -- errors ------------------------------------------------------------------------------------
    def _typo(self, word):
        rng = self.rng
        edits = 1 if rng.random() < 0.85 else 2
        for _edit in range(edits):
            if len(word) < 3:
                return word
            pos = rng.randint(1, len(word) - 2)
            op = rng.choices(('del', 'sub', 'ins', 'swap'), (0.35, 0.30, 0.20, 0.15))[0]
            letters = 'abcdefghijklmnopqrstuvwxyz'
            if op == 'del':
                word = word[:pos] + word[pos + 1 :]
            elif op == 'sub':
                word = word[:pos] + rng.choice(letters) + word[pos + 1 :]
            elif op == 'ins':
                word = word[:pos] + rng.choice(letters) + word[pos:]
            else:
                word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
        return word

    def _umlaut_variant(self, word):
        style = self.rng.choice((0, 1))
        out = []
        for ch in word:
            low = ch.lower()
            if low in UMLAUTS:
                rep = UMLAUTS[low][style]
                out.append(rep.upper() if ch.isupper() else rep)
            else:
                out.append(ch)
        return ''.join(out)

    def _date_error(self, birth, kind):
        rng = self.rng
        year, month, day = birth
        if kind == 'day_month_swap':
            return self._fmt((year, day, month))
        if kind == 'year_off_by_one':
            return self._fmt((year + rng.choice((-1, 1)), month, min(day, 28) if month == 2 else day))
        for _attempt in range(20):
            digits = list(self._fmt(birth))
            pos = rng.choice((2, 3, 4, 5, 6, 7))
            digits[pos] = rng.choice('0123456789'.replace(digits[pos], ''))
            text = ''.join(digits)
            y, m, d = int(text[:4]), int(text[4:6]), int(text[6:])
            if 1 <= m <= 12 and 1 <= d <= _DAYS[m - 1] and 1900 < y < 2026:
                return text
        return self._fmt(birth)

    def _reregister(self, person, first_pid, first_date):
        """A station registers the person again under its own PatientID, with the errors of the model."""
        rng = self.rng
        labels = []
        surnames = list(person.surnames)
        given = person.given
        if person.surname_alts and rng.random() < 0.3:
            surnames = [rng.choice(person.surname_alts)]
            labels.append('transliteration')
        if person.given_alts and rng.random() < 0.3:
            given = rng.choice(person.given_alts)
            if 'transliteration' not in labels:
                labels.append('transliteration')
        if person.group == 'de' and rng.random() < 0.5:
            new = [self._umlaut_variant(s) for s in surnames]
            new_given = self._umlaut_variant(given)
            if new != surnames or new_given != given:
                labels.append('umlaut')
            surnames, given = new, new_given
        if len(surnames) > 1:
            roll = rng.random()
            if roll < 0.15:
                surnames = surnames[:1] if person.group == 'es' else surnames[-1:]
                labels.append('one_surname')
            elif roll < 0.20:
                surnames = ['-'.join(surnames)]
                labels.append('hyphenated_surnames')
        if rng.random() < 0.05:
            parts = ' '.join(surnames).split()
            if any(p.lower() in ('de', 'del', 'la', 'da', 'dos', 'das', 'do') for p in parts):
                kept = [p for p in parts if p.lower() not in ('de', 'del', 'la', 'da', 'dos', 'das', 'do')]
                surnames = [' '.join(kept)] if rng.random() < 0.5 else [''.join(parts)]
                labels.append('particles')
        if ' ' in given and rng.random() < 0.10:
            given = given.split()[0]
            labels.append('given_first_part')
        if given in NICKNAMES and rng.random() < 0.02:
            given = NICKNAMES[given]
            labels.append('nickname')
        if rng.random() < 0.12:
            if rng.random() < 0.6:
                index = rng.randrange(len(surnames))
                surnames[index] = self._typo(surnames[index])
            else:
                given = self._typo(given)
            labels.append('typo')
        swapped = rng.random() < 0.05
        if swapped:
            labels.append('swapped_fields')
        # how the operator writes the name
        family = ' '.join(surnames)
        style = rng.choices(('dicom', 'free_family_first', 'free_given_first', 'comma'), (0.45, 0.25, 0.15, 0.15))[0]
        if swapped:
            family, given = given, family
        if style == 'dicom':
            name = f'{family}^{given}'
        elif style == 'free_family_first':
            name = f'{family} {given}'
        elif style == 'free_given_first':
            name = f'{given} {family}'
        else:
            name = f'{family}, {given}'
        if style != 'dicom':
            labels.append('free_text')
        if rng.random() < 0.5:
            name = name.upper()
        if rng.random() < 0.3:
            name = _plain(name)
        # birth date and sex
        birth = self._fmt(person.birth)
        roll = rng.random()
        if roll < 0.10:
            birth = ''
            labels.append('missing_birth_date')
        elif roll < 0.13:
            birth = self._date_error(person.birth, 'digit')
            labels.append('date_digit')
        elif roll < 0.15 and person.birth[2] <= 12 and person.birth[2] != person.birth[1]:
            birth = self._date_error(person.birth, 'day_month_swap')
            labels.append('day_month_swap')
        elif roll < 0.17:
            birth = self._date_error(person.birth, 'year_off_by_one')
            labels.append('year_off_by_one')
        sex = person.sex
        roll = rng.random()
        if roll < 0.05:
            sex = ''
            labels.append('missing_sex')
        elif roll < 0.055:
            sex = 'M' if sex == 'F' else 'F'
            labels.append('wrong_sex')
        station = rng.choice(STATIONS[1:])
        study_date = first_date if rng.random() < 0.4 else self._study_date()
        other_ids = first_pid if rng.random() < 0.05 else ''
        if other_ids:
            labels.append('other_ids')
        return self._emit(person, name, birth, sex, station, study_date, '+'.join(labels) or 'exact', other_ids)

    # -- look-alikes -------------------------------------------------------------------------------
    def _lookalike(self, person, first_pid, kind):
        rng = self.rng
        if kind in ('twins', 'siblings'):
            if kind == 'twins':
                birth = person.birth
            else:
                gap = rng.randint(1, 6) * rng.choice((-1, 1))
                birth = self._birth(person.birth[0] + gap, person.birth[0] + gap)
            for _attempt in range(10):
                other = self._person(person.group, birth=birth, surnames=person.surnames)
                if _plain(other.given).split()[0] != _plain(person.given).split()[0]:
                    break
            else:
                return None
        elif kind == 'parent_child':
            gap = rng.randint(22, 40) * rng.choice((-1, 1))
            birth = self._birth(person.birth[0] + gap, person.birth[0] + gap)
            if birth[0] > 2024:
                return None
            surnames = list(person.surnames)
            if len(surnames) > 1:
                surnames[1] = self._zipf(ES_SURNAMES if person.group == 'es' else PT_SURNAMES)
            other = self._person(person.group, sex=person.sex, birth=birth, surnames=surnames)
            other.given = person.given
        elif kind == 'spouses':
            if person.group not in ('de', 'zh', 'pt'):
                return None
            other = self._person(person.group, sex='F' if person.sex == 'M' else 'M', surnames=person.surnames)
            other.birth = self._birth(person.birth[0] - 5, person.birth[0] + 5)
        else:  # namesake: the same full name, another person
            other = self._person(person.group, sex=person.sex, surnames=person.surnames)
            other.given = person.given
        pid, _date = self._register(other)
        self.truth[pid] = other.pid
        self.lookalike_pairs.append((first_pid, pid, kind))
        return pid

    # -- entry point -------------------------------------------------------------------------------
    def run(self, n_records, dup_rate=0.35, lookalike_rate=0.08, common_rate=0.03):
        rng = self.rng
        while len(self.records) < n_records:
            if rng.random() < common_rate:
                fam1, fam2, giv, sex = rng.choice(COMMON)
                group = 'es' if fam2 else ('pt' if fam1 in PT_SURNAMES else 'de' if fam1 == 'Müller' else 'ar')
                if fam1 == 'Wang':
                    group = 'zh'
                person = self._person(group, sex=sex, surnames=[f for f in (fam1, fam2) if f])
                person.given = giv
            else:
                person = self._person()
            first, first_date = self._register(person)
            if rng.random() < dup_rate:
                for _copy in range(rng.choices((1, 2, 3), (0.7, 0.22, 0.08))[0]):
                    self._reregister(person, first, first_date)
            if rng.random() < lookalike_rate:
                self._lookalike(person, first, rng.choice(LOOKALIKES))
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


def generate(n_records=1000, seed=1, dup_rate=0.35, lookalike_rate=0.08, common_rate=0.03):
    """Return ``{'records', 'truth' (PatientID -> person), 'variation' (PatientID -> labels), 'lookalike_pairs'}``."""
    return Generator(seed).run(n_records, dup_rate, lookalike_rate, common_rate)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=1000, help='number of records (PatientIDs)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--json', help='write records and ground truth to this JSON file (default: stdout)')
    args = parser.parse_args(argv)
    text = json.dumps(generate(args.records, args.seed), ensure_ascii=False, indent=1)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as handle:
            handle.write(text)
    else:
        sys.stdout.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
