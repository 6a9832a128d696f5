"""Fixed vocabulary of the synthetic region: units, hospitals, names and plan texts.

Jönköping-like names with fictional HSA-ids. Every string must be encodable in Windows-1252,
because Diver's export is (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

REGION_HSA_PREFIX = "SE2321000057"


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """A listing unit (vårdcentral) and where its patients go when admitted."""

    number: int  # makes the fictional HSA-id
    name: str
    kommun: str
    hospital: str
    weight: float  # relative size of the listed population
    own_export: str | None = None  # file-name tag of a unit exporting its own Prea60 file

    @property
    def hsa_id(self) -> str:
        return f"{REGION_HSA_PREFIX}-E{self.number:011d}"


# Ordered: `--units U` takes the first U. The fourth is a private unit with its own export
# format (UTF-8 with BOM, comma-delimited), so the default already shows that variety.
UNITS: tuple[UnitInfo, ...] = (
    UnitInfo(1, "Aneby vårdcentral", "Aneby", "Höglandssjukhuset", 0.5),
    UnitInfo(2, "Vårdcentralen Bra Liv Ryhov", "Jönköping", "Länssjukhuset Ryhov", 1.4),
    UnitInfo(3, "Vårdcentralen Bra Liv Eksjö", "Eksjö", "Höglandssjukhuset", 1.0),
    UnitInfo(4, "Vårdcentralen Solbacken", "Jönköping", "Länssjukhuset Ryhov", 0.9, "solbacken"),
    UnitInfo(5, "Vårdcentralen Bra Liv Nässjö", "Nässjö", "Höglandssjukhuset", 1.2),
    UnitInfo(6, "Vårdcentralen Bra Liv Värnamo", "Värnamo", "Värnamo sjukhus", 1.3),
    UnitInfo(7, "Vårdcentralen Bra Liv Tranås", "Tranås", "Höglandssjukhuset", 1.1),
    UnitInfo(8, "Vårdcentralen Bra Liv Vetlanda", "Vetlanda", "Höglandssjukhuset", 1.1),
    UnitInfo(9, "Vårdcentralen Bra Liv Gislaved", "Gislaved", "Värnamo sjukhus", 1.0),
    UnitInfo(10, "Vårdcentralen Bra Liv Habo", "Habo", "Länssjukhuset Ryhov", 0.7),
    UnitInfo(11, "Vårdcentralen Bra Liv Mullsjö", "Mullsjö", "Länssjukhuset Ryhov", 0.5),
    UnitInfo(12, "Vårdcentralen Bra Liv Sävsjö", "Sävsjö", "Värnamo sjukhus", 0.6),
    UnitInfo(13, "Vårdcentralen Bra Liv Vaggeryd", "Vaggeryd", "Länssjukhuset Ryhov", 0.7),
    UnitInfo(14, "Vårdcentralen Bra Liv Gnosjö", "Gnosjö", "Värnamo sjukhus", 0.5),
)

WARDS: tuple[str, ...] = (
    "Medicin 1",
    "Medicin 2",
    "Medicin 3",
    "Geriatrik",
    "Kardiologi",
    "Lungmedicin",
    "Infektion",
    "Ortopedi",
    "Kirurgi",
    "Strokeenhet",
    "Njurmedicin",
)

FEMALE_GIVEN: tuple[str, ...] = (
    "Anna", "Margareta", "Elisabeth", "Eva", "Birgitta", "Kristina", "Karin", "Marianne",
    "Ingrid", "Gunilla", "Inger", "Barbro", "Britt", "Ulla", "Märta", "Åsa", "Gunnel", "Sonja",
    "Astrid", "Ingegerd", "Siv", "Solveig", "Gerd", "Agneta", "Anita", "Kerstin", "Berit",
    "Elsa", "Dagny", "Svea", "Ragnhild", "Renée", "Anna-Lena", "Ann-Marie", "Gun-Britt",
    "Maj-Lis", "Fatima", "Amina", "Jasmina", "Leila", "Pirkko", "Tuula", "Marija", "Hoa",
    "Ayse", "Irène",
)  # fmt: skip

MALE_GIVEN: tuple[str, ...] = (
    "Lars", "Karl", "Erik", "Anders", "Per", "Bengt", "Sven", "Gösta", "Nils", "Olof", "Bo",
    "Lennart", "Göran", "Stig", "Rolf", "Kjell", "Åke", "Ingvar", "Rune", "Gunnar", "Sture",
    "Tage", "Arne", "Bertil", "Sixten", "Holger", "Östen", "Örjan", "Håkan", "Leif", "Björn",
    "Jörgen", "Ture", "Evert", "Karl-Erik", "Lars-Göran", "Per-Olof", "Omar", "Ahmed",
    "Mirsad", "Dragan", "Reza", "Seppo", "Mehmet", "Jürgen", "José", "Thanh",
)  # fmt: skip

FAMILY: tuple[str, ...] = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
    "Persson", "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson",
    "Bengtsson", "Jönsson", "Lindberg", "Jakobsson", "Magnusson", "Lindström", "Lindqvist",
    "Olofsson", "Lindgren", "Axelsson", "Berg", "Bergström", "Lundberg", "Lind", "Lundgren",
    "Mattsson", "Berglund", "Fredriksson", "Sandberg", "Forsberg", "Sjöberg", "Wallin",
    "Engström", "Eklund", "Danielsson", "Håkansson", "Björk", "Bergman", "Gunnarsson", "Holm",
    "Wikström", "Samuelsson", "Isaksson", "Fransson", "Nyström", "Holmberg", "Arvidsson",
    "Löfgren", "Söderberg", "Blomqvist", "Claesson", "Mårtensson", "Åberg", "Ekström", "Öberg",
    "Ström", "Åström", "Hägg", "Sjögren", "Ek", "Al-Hassan", "Hodzic", "Nguyen", "Yilmaz",
    "Kovacevic", "Virtanen", "Korhonen", "Rahimi", "Müller", "García", "Kowalski",
    "Lind Åberg",
)  # fmt: skip

# Who a närstående is, seen from the patient.
RELATIONS: tuple[str, ...] = ("dotter", "son", "sambo", "syster", "bror", "barnbarn")
SPOUSE = {"F": "make", "M": "maka"}

WHAT_MATTERS: tuple[str, ...] = (
    "Att kunna bo kvar hemma",
    "Att orka gå till affären själv",
    "Att slippa åka in akut till sjukhuset",
    "Att få träffa barnbarnen",
    "Att känna mig trygg på nätterna",
    "Att kunna sköta trädgården i sommar",
    "Att inte vara till besvär för mina barn",
    "Att få fortsätta gå på körsång på torsdagar",
    "Att klara mig utan hemtjänst så länge det går",
    "Att ha ont mindre",
    "Att veta vem jag ska ringa när jag blir sämre",
    "Att kunna åka till stugan",
)

# (text, expressed_by)
GOALS: tuple[tuple[str, str], ...] = (
    ("Gå 20 minuter varje dag", "patient"),
    ("Klara dusch på egen hand", "patient"),
    ("Klara förflyttning säng–rullstol själv", "patient"),
    ("Sova bättre om nätterna", "patient"),
    ("Kunna handla själv en gång i veckan", "patient"),
    ("Känna mig trygg hemma", "patient"),
    ("Hålla vikten stabil", "patient"),
    ("Inga fall under kommande halvår", "care"),
    ("Färre akuta besök på sjukhus", "care"),
    ("Blodtryck under 140/90", "care"),
    ("Läkemedelslistan stämmer med dosetten", "care"),
    ("Stabilt blodsocker, HbA1c under 60", "care"),
)

# responsible -> ((text, role or None), ...)
ACTIONS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "region": (
        ("Läkemedelsgenomgång var tredje månad", "fast-lakarkontakt"),
        ("Telefonuppföljning varannan vecka", "distriktsskoterska"),
        ("Samordna kontakter med sjukhuset vid inskrivning", "vardsamordnare"),
        ("Provtagning och blodtryckskontroll varje månad", "distriktsskoterska"),
        ("Bedömning av fysioterapeut på vårdcentralen", "rehab"),
    ),
    "kommun": (
        ("Hemtjänst morgon och kväll", "hemtjanst"),
        ("Rehabinsats i hemmet, 6 veckor", "rehab"),
        ("Hemsjukvård: dosett och såromläggning", "hemsjukvard"),
        ("Trygghetslarm installeras", "bistandshandlaggare"),
        ("Matdistribution fem dagar i veckan", "hemtjanst"),
    ),
    "patient": (
        ("Väga mig varje måndag och ringa vårdcentralen vid +2 kg", None),
        ("Ta blodtrycket hemma varje morgon", None),
        ("Använda rollator utomhus", None),
        ("Ringa sjuksköterskan vid ökad andfåddhet", None),
        ("Träna förflyttning dagligen med stöd", None),
    ),
    "narstaende": (
        ("Följa med på läkarbesök", None),
        ("Hjälpa till med inköp varje vecka", None),
        ("Ringa vårdcentralen vid försämring", None),
    ),
}

SIP_TITLES = {"AU124": "Samordnad individuell plan", "AU125": "SIP efter utskrivning"}
PK_TITLE = "Patientkontrakt"
APPOINTMENT_WITH: tuple[str, ...] = ("distriktssköterska", "läkare", "fysioterapeut")
