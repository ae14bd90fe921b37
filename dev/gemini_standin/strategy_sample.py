"""A hand-written sample strategy: what the offline demo shows instead of labelled filler,
in the brief's language, from the brief's own words."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .calls import LANGUAGE_PATTERN, GenerateCall
from .common import JSON, MARKER

# The fields that make a response schema the worker's MarketingStrategy (shared/models.py).
STRATEGY_REQUIRED = frozenset({"strategy_name", "target_audience", "required_budget", "steps"})
BRIEF_PATTERN = re.compile(r"<brief>\s*(.*?)\s*</brief>", re.DOTALL)
PLACE_PATTERN = re.compile(
    r"\b(?:in|at|from|în|din|la)\s+"
    r"([A-ZĂÂÎȘŞȚŢ][\w’'ăâîșşțţ]+(?:-[A-ZĂÂÎȘŞȚŢ][\w’'ăâîșşțţ]+)*"
    r"(?:\s+[A-ZĂÂÎȘŞȚŢ][\w’'ăâîșşțţ]+)?)"
)
BUDGET_PATTERN = re.compile(
    r"(?:€\s*(\d[\d.,\s]*\d|\d)|(\d[\d.,\s]*\d|\d)\s*(?:eur|euro|€))", re.IGNORECASE
)
DURATION_PATTERN = re.compile(
    r"\b(\d{1,2}|[a-zăâîșşțţ]+)\s+(weeks?|săptămâni|saptamani|months?|luni|lună|luna)\b",
    re.IGNORECASE,
)
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8, "ten": 10,
    "twelve": 12, "o": 1, "una": 1, "două": 2, "doua": 2, "trei": 3, "patru": 4, "cinci": 5,
    "șase": 6, "sase": 6, "opt": 8, "zece": 10,
}  # fmt: skip


@dataclass(frozen=True)
class BusinessKind:
    """A kind of business, recognised by word stems of the brief, in both languages."""

    stems: tuple[str, ...]
    noun: str  # English
    noun_ro: str  # Romanian, with its article
    feminine_ro: bool  # for the Romanian participles that follow the noun
    audience: str
    audience_ro: str
    picture: str  # what the preview image shows
    picture_ro: str


BUSINESS_KINDS = (
    BusinessKind(
        ("coffee", "café", "cafe", "cafene", "cafea", "espresso"),
        "coffee shop",
        "cafeneaua",
        True,
        "students and young professionals who want a place to meet, read and work",
        "studenți și tineri profesioniști care caută un loc de întâlnire, lectură și lucru",
        "a warm, sunlit coffee shop seen from the street, people talking over cups at a long "
        "wooden table",
        "o cafenea caldă, luminată de soare, văzută din stradă, cu oameni care stau de vorbă la "
        "o masă lungă de lemn",
    ),
    BusinessKind(
        ("bakery", "bread", "pastr", "brutări", "pâine", "paine", "patiser", "cofetări"),
        "bakery",
        "brutăria",
        True,
        "young families and neighbours who buy fresh bread several times a week",
        "familii tinere și vecini care cumpără pâine proaspătă de câteva ori pe săptămână",
        "a baker's counter at dawn, fresh loaves on wooden shelves, flour in the light",
        "tejgheaua unei brutării în zori, pâini proaspete pe rafturi de lemn, făină în lumină",
    ),
    BusinessKind(
        ("book", "librări", "carte", "cărți", "carti"),
        "bookshop",
        "librăria",
        True,
        "readers aged 20 to 45 who like recommendations, readings and quiet places",
        "cititori între 20 și 45 de ani care apreciază recomandări, lecturi și locuri liniștite",
        "tall shelves of books, a reading corner with an armchair and a lamp, evening light",
        "rafturi înalte cu cărți, un colț de lectură cu fotoliu și lampă, lumină de seară",
    ),
    BusinessKind(
        ("honey", "miere", "jam", "cheese", "brânz", "branz", "wine", "farm", "ferm"),
        "local food brand",
        "brandul local",
        False,
        "families and food lovers who pay more for local, traceable products",
        "familii și iubitori de mâncare bună care plătesc mai mult pentru produse locale",
        "jars and produce on a rustic table in a meadow, soft morning light",
        "borcane și produse pe o masă rustică într-o pajiște, lumină blândă de dimineață",
    ),
    BusinessKind(
        ("restaurant", "bistro", "pizz", "burger", "mâncare", "mancare", "bucătări"),
        "restaurant",
        "restaurantul",
        False,
        "couples, friends and office teams looking for a dependable place to eat out",
        "cupluri, grupuri de prieteni și echipe de birou care caută un loc bun de mâncat în oraș",
        "a lively dining room at dusk, shared plates on the tables, warm lights",
        "o sală de restaurant plină la apus, farfurii împărțite pe mese, lumini calde",
    ),
    BusinessKind(
        ("flower", "flori", "florări"),
        "flower shop",
        "florăria",
        True,
        "people buying gifts for birthdays, anniversaries and holidays such as 8 March",
        "oameni care cumpără cadouri de zile de naștere, aniversări și sărbători precum 8 Martie",
        "buckets of fresh flowers on a pavement in spring, a florist tying a bouquet",
        "găleți cu flori proaspete pe trotuar primăvara, o florăreasă legând un buchet",
    ),
    BusinessKind(
        ("gym", "fitness", "yoga", "pilates"),
        "fitness studio",
        "sala de fitness",
        True,
        "working adults aged 25 to 45 who want a routine close to home or work",
        "adulți între 25 și 45 de ani care vor o rutină aproape de casă sau de birou",
        "a bright studio with people mid-workout, large windows, plants, morning energy",
        "o sală luminoasă cu oameni în mijlocul antrenamentului, ferestre mari, plante",
    ),
    BusinessKind(
        ("app", "software", "saas", "platform", "aplicați", "aplicati"),
        "app",
        "aplicația",
        True,
        "small-business owners and team leads who try new tools on their phone first",
        "proprietari de firme mici și șefi de echipă care încearcă unelte noi întâi pe telefon",
        "a hand holding a phone over a busy desk, colourful abstract shapes around it",
        "o mână care ține un telefon deasupra unui birou aglomerat, forme abstracte colorate",
    ),
    BusinessKind(
        ("hotel", "pensiun", "guesthouse", "travel", "turism", "tourism", "caban"),
        "guesthouse",
        "pensiunea",
        True,
        "city couples and families planning weekend breaks within three hours' drive",
        "cupluri și familii de la oraș care plănuiesc weekenduri la cel mult trei ore de mers",
        "a wooden guesthouse terrace at sunset with mountains behind, two chairs and a blanket",
        "terasa de lemn a unei pensiuni la apus, cu munți în spate, două scaune și o pătură",
    ),
    BusinessKind(
        ("fashion", "clothing", "modă", "haine", "boutique", "shoe", "pantofi"),
        "boutique",
        "magazinul",
        False,
        "style-conscious shoppers aged 20 to 40 who discover brands on social media",
        "cumpărători atenți la stil, între 20 și 40 de ani, care descoperă branduri pe rețele",
        "a bright shop window with clothes on simple rails, a street reflected in the glass",
        "o vitrină luminoasă cu haine pe umerașe simple, strada reflectată în geam",
    ),
)
GENERIC_KIND = BusinessKind(
    (),
    "business",
    "afacerea",
    True,
    "local customers aged 25 to 45 who look for a dependable, friendly place nearby",
    "clienți locali între 25 și 45 de ani care caută un loc de încredere, aproape de ei",
    "a welcoming shopfront on a busy street in warm afternoon light, people walking in",
    "o intrare primitoare într-o stradă animată, în lumina caldă a după-amiezii",
)
SUBJECT_STOPWORDS = frozenset({
    "a", "an", "the", "of", "in", "at", "for", "with", "and", "to", "near", "on", "our", "my",
    "o", "un", "de", "din", "în", "la", "cu", "pentru", "și", "lângă", "pe", "al", "ale",
})  # fmt: skip
# Capitalised words after "in" that are not places.
NOT_PLACES = frozenset({
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December", "Ianuarie", "Februarie", "Martie", "Aprilie", "Mai",
    "Iunie", "Iulie", "Septembrie", "Octombrie", "Noiembrie", "Decembrie", "English",
    "Romanian", "Română", "Engleză",
})  # fmt: skip
BUDGET_CHOICES = (4_800, 6_500, 8_200, 9_600, 12_500, 15_000, 18_400, 24_000)
SHARE_CHOICES = ((0.35, 0.25, 0.25, 0.15), (0.4, 0.25, 0.2, 0.15), (0.3, 0.3, 0.25, 0.15))
SAMPLE_CHANNELS = {
    "en": (
        ("Instagram and TikTok", "Short videos and photos reach the audience where it spends "
         "its evenings; a small paid boost targets people within 3 km."),
        ("Google Search and Maps", "People nearby search before they visit: a complete profile "
         "and search ads catch them at the moment of choice."),
        ("Local partnerships and events", "Neighbouring businesses, universities and community "
         "groups lend trust and bring the first crowds."),
        ("Email and loyalty programme", "The cheapest visit is the second one: a monthly "
         "newsletter and a stamp card bring people back."),
    ),
    "ro": (
        ("Instagram și TikTok", "Clipurile scurte și fotografiile ajung la public acolo unde "
         "își petrece serile; o promovare plătită mică țintește oamenii pe o rază de 3 km."),
        ("Google Search și Maps", "Oamenii din zonă caută înainte să vină: un profil complet și "
         "reclamele în căutare îi prind în momentul alegerii."),
        ("Parteneriate locale și evenimente", "Afacerile vecine, universitățile și comunitățile "
         "locale aduc încredere și primii clienți."),
        ("Email și program de fidelitate", "Cea mai ieftină vizită este a doua: un newsletter "
         "lunar și un card de fidelitate îi aduc pe oameni înapoi."),
    ),
}  # fmt: skip


def is_strategy_schema(schema: JSON) -> bool:
    """Is this response schema the worker's strategy (by its required fields)?"""
    required = schema.get("required")
    return isinstance(required, list) and set(required) >= STRATEGY_REQUIRED


def brief_of(call: GenerateCall) -> str:
    found = BRIEF_PATTERN.search(call.text)
    text = found.group(1) if found else LANGUAGE_PATTERN.sub(" ", call.text)
    # Test markers and other ids (letters and digits mixed, long) say nothing about the subject.
    words = [w for w in text.split() if not (len(w) >= 8 and re.search(r"\d", w) and
                                              re.search(r"[^\W\d_]", w))]  # fmt: skip
    return " ".join(words)


def _kind_of(brief: str) -> BusinessKind:
    lowered = brief.lower()
    for kind in BUSINESS_KINDS:
        if any(re.search(rf"\b{re.escape(stem)}", lowered) for stem in kind.stems):
            return kind
    return GENERIC_KIND


def _subject_of(brief: str) -> str:
    """The first words of the brief's first clause (for a business of no known kind)."""
    clause = re.split(r"[.,;:!?\n()]", brief.strip(), maxsplit=1)[0]
    words = clause.split()[:6]
    while words and words[-1].lower() in SUBJECT_STOPWORDS:
        words.pop()
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _place_in(brief: str) -> str | None:
    for match in PLACE_PATTERN.finditer(brief):
        if match.group(1).split()[0] not in NOT_PLACES:
            return match.group(1)
    return None


def _budget_in(brief: str) -> int | None:
    for match in BUDGET_PATTERN.finditer(brief):
        digits = re.sub(r"\D", "", match.group(1) or match.group(2) or "")
        if digits and 300 <= int(digits) <= 5_000_000:
            return int(digits)
    return None


def _weeks_in(brief: str) -> int | None:
    for match in DURATION_PATTERN.finditer(brief):
        raw, unit = match.group(1).lower(), match.group(2).lower()
        count = int(raw) if raw.isdigit() else NUMBER_WORDS.get(raw)
        if not count:
            continue
        weeks = count if unit.startswith(("week", "săpt", "sapt")) else round(count * 52 / 12)
        if 2 <= weeks <= 52:
            return weeks
    return None


def _thousands(amount: float, language: str) -> str:
    text = f"{round(amount):,}"
    return text.replace(",", ".") if language == "ro" else text


def strategy_sample(call: GenerateCall, generic: JSON, schema: JSON) -> JSON:
    """A realistic, hand-written strategy in the requested language (English unless it is
    Romanian), shaped by the brief: its kind of business, its place, its budget and length.

    Still marked as a sample (the ``[stand-in sample, xx]`` prefix of the name and the
    summary) and deterministic (choices from the request digest). Fields of the schema that
    this sample does not know keep the generic filler; fields the schema lacks are left out.
    """
    requested = call.language
    language = "ro" if (requested or "").lower().startswith("ro") else "en"
    prefix = f"[stand-in sample, {requested}]" if requested else MARKER
    brief = brief_of(call)
    token = call.digest.hex()[:6]
    rng = random.Random(int.from_bytes(call.digest[8:16], "big"))  # noqa: S311 - not a secret
    kind = _kind_of(brief)
    place = _place_in(brief)
    budget = _budget_in(brief) or rng.choice(BUDGET_CHOICES)
    weeks = _weeks_in(brief) or 12
    shares = rng.choice(SHARE_CHOICES)
    visitors = max(300, round(budget / 8 / 50) * 50)
    signups = max(100, round(visitors * 0.4 / 10) * 10)
    if language == "ro":
        where = f" din {place}" if place else ""
        noun = kind.noun_ro[0].upper() + kind.noun_ro[1:]
        known_as = "cunoscută" if kind.feminine_ro else "cunoscut"
        subject = _subject_of(brief) if kind is GENERIC_KIND else ""
        title = f"„{subject}”" if subject else f"{noun}{where}"
        name = f"{title}: {weeks} săptămâni până la clienți fideli"
        audience = kind.audience_ro[0].upper() + kind.audience_ro[1:]
        audience += f", din {place} și împrejurimi" if place else ""
        summary = (
            f"Un plan de {weeks} săptămâni prin care {kind.noun_ro}{where} devine {known_as} "
            f"publicului potrivit, iar primele vizite se transformă în obiceiuri: o lansare "
            f"puternică, prezență săptămânală pe rețelele sociale și în căutările locale, și "
            f"motive clare de a reveni. Exemplu scris de mână de stand-in-ul local Gemini, nu "
            f"răspunsul unui model real."
        )
        steps = [
            "Înainte de lansare: clarificați oferta și povestea în trei fotografii și o singură "
            "propoziție pe care o repetă toată echipa.",
            "Puneți la punct bazele: profilul Google Business cu program și fotografii, un "
            "profil de Instagram cu primele nouă postări și o pagină simplă cu adresa și un "
            "formular de abonare.",
            "Săptămâna lansării: un eveniment de deschidere cu o ofertă mică pentru primii 200 "
            "de vizitatori, anunțat cu două săptămâni înainte, online și prin partenerii locali.",
            "În fiecare săptămână după lansare: două clipuri scurte (din culise, clienți fideli, "
            "produse noi), promovate cu un buget mic către oamenii din zonă.",
            "Din a doua lună: programul de fidelitate (a șasea vizită gratuită) și un newsletter "
            "lunar pentru toți cei abonați.",
            f"În ultimele două săptămâni din cele {weeks}: comparați rezultatele cu indicatorii, "
            f"renunțați la canalul cel mai slab, dublați-l pe cel mai bun și planificați "
            f"trimestrul următor.",
        ]
        messages = [
            f"{noun}{where}: aproape de tine, în fiecare zi.",
            "Calitate pe care o simți de la prima vizită.",
            "A șasea vizită e din partea casei.",
        ]
        kpis = [
            f"{_thousands(visitors, 'ro')} de vizitatori în prima lună",
            f"{_thousands(signups, 'ro')} de abonați la newsletter până în săptămâna {weeks}",
            "Nota medie 4,6 sau mai mult pe Google, din cel puțin 100 de recenzii",
            "30% dintre clienți revin în cel mult o lună",
        ]
        picture = kind.picture_ro[0].upper() + kind.picture_ro[1:] + "; fără text și fără logo."
    else:
        at = f" in {place}" if place else ""
        noun = kind.noun
        title = " ".join(w[:1].upper() + w[1:] for w in noun.split())
        subject = _subject_of(brief) if kind is GENERIC_KIND else ""
        if subject:
            title = f"“{subject}”"
        elif place:
            title = f"{place} {title}"
        name = f"{title}: {weeks} Weeks to Loyal Customers"
        audience = kind.audience[0].upper() + kind.audience[1:]
        audience += f", in and around {place}" if place else ""
        summary = (
            f"A {weeks}-week plan to make the {noun}{at} known to the right people and turn "
            f"first visits into habits: a strong opening, a weekly presence on social media "
            f"and in local search, and clear reasons to come back. Hand-written sample from "
            f"the local Gemini stand-in, not a real model's answer."
        )
        steps = [
            "Before the launch: sharpen the offer and the story into three photos and one "
            "sentence that everyone on the team repeats.",
            "Set up the basics: a Google Business Profile with hours and photos, an Instagram "
            "profile with its first nine posts, and a simple page with the address and a "
            "sign-up form.",
            "Launch week: an opening event with a small offer for the first 200 visitors, "
            "announced two weeks ahead online and through local partners.",
            "Every week after the launch: two short videos (behind the scenes, regulars, new "
            "products), boosted with a small budget to people nearby.",
            "From the second month: the loyalty programme (the sixth visit free) and a monthly "
            "newsletter to everyone who signed up.",
            f"In the last two of the {weeks} weeks: compare the results with the KPIs, drop the "
            f"weakest channel, double the best one, and plan the next quarter.",
        ]
        messages = [
            f"Your everyday {noun}{at}.",
            "Quality you notice on the first visit.",
            "The sixth visit is on us.",
        ]
        kpis = [
            f"{_thousands(visitors, 'en')} visitors in the first month",
            f"{_thousands(signups, 'en')} newsletter sign-ups by week {weeks}",
            "An average Google rating of 4.6 or more, from at least 100 reviews",
            "30% of customers come back within a month",
        ]
        picture = kind.picture[0].upper() + kind.picture[1:] + "; no text and no logos."
    channels = [
        {"name": channel, "rationale": why, "budget_share": share}
        for (channel, why), share in zip(SAMPLE_CHANNELS[language], shares, strict=True)
    ]
    sample: JSON = {
        "strategy_name": f"{prefix} {name} (#{token})",
        "target_audience": audience,
        "required_budget": float(budget),
        "steps": [{"step_number": i, "description": text} for i, text in enumerate(steps, 1)],
        "summary": f"{prefix} {summary}",
        "key_messages": messages,
        "channels": channels,
        "kpis": kpis,
        "timeline_weeks": weeks,
        "visual_brief": picture,
    }
    properties = schema.get("properties")
    known = set(properties) if isinstance(properties, dict) else set(sample)
    return {**generic, **{k: v for k, v in sample.items() if k in known}}
