"""Question-answer generation, behind one interface (see "Generators" below). The offline extractive
generator needs no model: rules find the facts of the text (a short answer each) and ask for each fact in
several phrasings."""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from workers.common.errors import Cancelled, ReadableError
from workers.common.llm import chat_text
from workers.common.sentences import split_sentences

@dataclass
class QA:
    question: str
    answer: str
    chunk_index: int
    fact: str = ""  # shared by the phrasings of one fact (the same short answer asked several ways); "" alone


# ---------------------------------------------------------------------------------------------------------
# The offline extractive generator. No model: rules over words find facts, each a short answer (a name, a
# number, a date, a term, a short noun phrase) and the questions a person would ask to get it, several
# phrasings per fact. What is not a fact (code, tables of numbers, references, headings, links) is skipped.
#
# A chunk is read line by line: Markdown table rows give "What is the <column> of <first cell>?", "key: value"
# lines (slides, CSV and JSON records) give "What is the <key> of <record>?", and prose is cut into sentences
# (workers.common.sentences) whose clause is found by a small grammar: subject, verb group, what follows. The answer
# is then asked for three ways: an inverted wh-question ("When was X opened?"), the wh-word in place
# ("X was opened in which year?"), and another wording ("In what year was X opened?").
# ---------------------------------------------------------------------------------------------------------

PHRASINGS = 3
MAX_ANSWER_WORDS = 8
MAX_SENTENCE_WORDS = 50
MAX_QUESTION_WORDS = 22


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DETERMINERS = _words("the a an this that these those its their his her our your my each every some any no all "
                      "both either neither another such several many most few")
_PRONOUNS = _words("it its they them their theirs he him his she her hers we us our you your i me my this these "
                   "those one ones itself themselves himself herself someone something anyone anything everyone "
                   "everything nobody nothing who whom whose which what there here")
_QUESTION_PRONOUNS = re.compile(r"\b(?:it|its|they|them|their|he|him|his|she|her|we|us|our|this|these|"
                                r"those|that|itself|themselves|my|mine|me|i)\b", re.I)
_PREPOSITIONS = _words("of in on at by for with from to into onto over under about after before during since "
                       "until till through across along among around between behind beyond near inside outside "
                       "within without against toward towards upon via per like unlike than as")
_RELATIVE = _words("which that who whom whose where when while because although though whereas if unless so "
                   "but and or nor yet")
_BE = {"is": "is", "are": "are", "was": "was", "were": "were", "am": "am"}
_HAVE = {"has": "does", "have": "do", "had": "did"}
_MODALS = _words("can will shall")
_UNCERTAIN = _words("may might could should would must ought cannot can't won't")
_ADVERBS = _words("also only still now already currently usually typically generally often always sometimes "
                  "first originally later once mainly mostly largely widely commonly primarily however "
                  "therefore thus then just even officially traditionally normally frequently rarely mostly "
                  "actually really certainly probably possibly finally initially recently formerly today "
                  "nowadays reportedly allegedly simply newly annually regularly jointly partly entirely "
                  "fully almost nearly roughly approximately")
_OPENERS = re.compile(r"^(?:(?:however|moreover|furthermore|also|thus|therefore|in general|in addition|additionally|"
                      r"finally|today|currently|nowadays|traditionally|originally|historically|in practice|"
                      r"in fact|generally|usually|typically|later|then|indeed|notably|overall|in short|"
                      r"as a result|in total|in particular|by default)\s*,\s+|(?:however|moreover|furthermore|"
                      r"therefore|thus|also)\s+)", re.I)
_IMPERATIVE = _words("please see note try use read make run send check install remove click select open type "
                     "enter press go do don't avoid ensure let consider visit refer contact follow add set call "
                     "copy edit put keep take write")
_ROLES = _words("mayor president founder founders king queen author authors director ceo chairman chairwoman chair "
                "leader head minister governor captain chief inventor creator designer architect composer "
                "painter writer poet owner editor maintainer maintainers developer developers manager secretary "
                "prince princess emperor empress pope bishop coach champion winner husband wife son daughter "
                "father mother brother sister chancellor senator judge commander general professor teacher "
                "student member members abbot mistress master ruler monarch sovereign premier spokesperson "
                "heir successor predecessor discoverer explorer scientist artist actor actress singer player "
                "pilot astronaut engineer physician doctor nurse lawyer priest saint hero villain narrator "
                "protagonist patron keeper warden guardian curator librarian treasurer clerk sheriff")
_PEOPLE = _words("people persons men women children developers maintainers users students engineers scientists "
                 "settlers monks workers farmers romans greeks team committee council government company "
                 "community members staff authors researchers volunteers residents citizens soldiers operators "
                 "administrators admins programmers designers architects artists writers musicians")
_UNITS = _words("""
metres meters metre meter m km kilometres kilometers kilometre kilometer miles mile feet foot ft inches inch
centimetres centimeters cm millimetres millimeters mm yards yard kg kilograms kilogram grams gram g tonnes tons
tonne ton pounds lb lbs ounces litres liters litre liter ml gallons hectares hectare acres acre degrees degree
°c °f celsius fahrenheit kelvin seconds second minutes minute hours hour days day weeks week months month years
year decades centuries km² km2 sq mph kph km/h knots watts watt kw mw gw kwh mwh volts volt amps hz khz mhz ghz
bytes kb mb gb tb bits bit kbit mbit ms dollars euros pounds yen rupees calories kcal pixels percent per
""")
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_SEASONS = ("spring", "summer", "autumn", "fall", "winter")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|" \
         r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
_DATE_FULL = re.compile(rf"^(?:(?:\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+{_YEAR})|(?:{_MONTH}\s+\d{{1,2}}"
                        rf"(?:st|nd|rd|th)?,?\s+{_YEAR}))$")
_DATE_MONTH_YEAR = re.compile(rf"^{_MONTH}\s+{_YEAR}$")
_DATE_YEAR = re.compile(rf"^(?:{_YEAR}|the (?:early |late |mid-)?{_YEAR}s|(?:the )?(?:early |late )?"
                        r"[0-9]{1,2}(?:st|nd|rd|th) century)$")
_NUMBER_WORDS = _words("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                       "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                       "hundred thousand million billion trillion dozen dozens hundreds thousands millions "
                       "billions half")
_NUMBER = re.compile(r"^(?:[$€£¥]?\d[\d,]*(?:\.\d+)?(?:[$€£¥%]|k|m|bn)?|\d+/\d+)$")
_APPROX = _words("about around approximately nearly almost roughly some over under just")
_APPROX_PAIRS = {("more", "than"), ("less", "than"), ("fewer", "than"), ("at", "least"), ("at", "most"),
                 ("up", "to"), ("well", "over")}
_GENERIC_KEYS = _words("note notes warning example examples tip tips see source sources caution important answer "
                       "question q a step speaker summary description details comment comments remark remarks "
                       "abstract keywords figure table chapter section page contents result results conclusion "
                       "introduction overview background agenda todo fixme nb ps help bug bugs fix usage syntax")
_GENERIC_TITLES = _words("overview introduction summary agenda contents conclusion conclusions background results "
                         "details notes questions key facts facts thanks thank you appendix references outline "
                         "discussion method methods next steps q&a")
_URL = re.compile(r"https?://|www\.|\b[\w.+-]+@[\w-]+\.\w|\.(?:com|org|net|io)\b", re.I)
# Code: braces and operators, assignments, calls, statement ends, shell commands, definitions and imports,
# snake_case names. Words that are also English ("print", "import", "return") count only in code's syntax.
_CODE = re.compile(r"[{}]|==|!=|->|=>|::|\+=|&&|\|\||\w\s?=\s?[\w\"'(\[]|\w\(\S*\)|\);|;\s*$|`|\$\(|^\s*\$\s|"
                   r"\b(?:def|class|function|fn|lambda|return|const|var|let)\s+[\w$]+\s*[(=:{]|"
                   r"^\s*(?:import|from|#include|package|using)\s+[\w.<>\"]+\s*(?:$|;| import | as )|"
                   r"\bimport\s+[a-z_][\w.]*\s*(?:;|$| as )|\b(?:sudo|apt-get|apt|pip|npm|git|make)\s+[a-z-]+\b(?! of)|"
                   r"\b\w+\.\w+\(|\b[a-z]+_[a-z_]+\b|\b[a-z]+[A-Z]\w*\(")
_REFERENCE = re.compile(r"\bet al\b|\bdoi\b|\bpp?\.\s*\d|\bvol\.\s*\d|\bISBN\b|\barXiv\b|\bProceedings\b|\bIn:\s|"
                        r"^\[\d+\]|\(\d{4}[a-z]?\)[.,]|\b\d+\s*\(\d+\)\s*:\s*\d+|(?:[A-Z][a-z]+,\s(?:[A-Z]\.\s?)+,?"
                        r"\s*(?:and\s|&\s)?){2,}|\bRetrieved\b|\bAccessed\b|\bibid\b", re.I)
_LIST_MARK = re.compile(r"^\s*(?:[-*•+▪‣◦]|\d{1,3}[.)])\s+")
_HEADING_MARK = re.compile(r"^\s*#{1,6}\s+")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|(?:\s*:?-{2,}:?\s*\|)+\s*$")
_KEY_VALUE = re.compile(r"^(?P<key>[A-Za-z][\w .'/()&-]{0,48}?)\s*(?::|\s[—–]\s|\s-\s|[—–])\s*(?P<value>\S.*)$")
_PARENTHESES = re.compile(r"\s*\([^()]{0,80}\)")
_QUOTES = "\"'“”‘’«»"

# Verbs: base forms of common regular verbs, and the irregular ones with their past and participle.
_REGULAR = _words("""
accept achieve add adopt affect allow announce appear apply approve argue arrive ask assign attack attend avoid
base believe belong border borrow call carry cause celebrate change check claim close collect combine compare
compile complete compose compress compute connect consider consist contain continue contribute control convert
cover create cross decide declare decline decode decompress define deliver depend describe design destroy detect
determine develop die direct discover display distribute divide document dominate download drain earn elect
emerge employ enable encode encrypt end enter establish estimate exceed execute exist expand expect explain
explore export express extend fail feature fill finish flood flow follow form found generate govern graduate
handle happen help host house hunt identify ignore implement import improve include increase indicate influence
inform inherit install intend introduce invent invite involve join kill last launch learn list live load locate
look maintain manage manufacture mark marry measure migrate mine mount move name need note notice observe obtain
occupy occur offer open operate order organize organise originate own paint pass perform permit pick place plan
play point populate prefer prepare present preserve prevent print process produce promote protect prove provide
publish purchase rank reach receive record reduce refer reflect register reject release rely remain remove
rename repair replace report represent request require reserve resign resolve result retire return reveal rule
save score serve settle share ship sign sort specify start stay stop store study submit succeed suffer suggest
supply support surround survive switch talk test train transfer transform translate travel treat try turn unite
update use vary verify visit vote wait walk want wash watch weigh work worship stretch span total average peak
celebrate equal exhibit feature flourish inhabit measure cultivate harvest breed nest roost graze bloom flower
fix correct clean bump drop refactor merge revert port tweak deprecate disable rework
""")
_IRREGULAR = {
    "arise": ("arose", "arisen"), "bear": ("bore", "borne"), "become": ("became", "become"), "begin": ("began", "begun"),
    "bind": ("bound", "bound"), "break": ("broke", "broken"), "bring": ("brought", "brought"),
    "build": ("built", "built"), "buy": ("bought", "bought"), "catch": ("caught", "caught"),
    "choose": ("chose", "chosen"), "come": ("came", "come"), "cost": ("cost", "cost"), "cut": ("cut", "cut"),
    "deal": ("dealt", "dealt"), "dig": ("dug", "dug"), "draw": ("drew", "drawn"), "drink": ("drank", "drunk"),
    "drive": ("drove", "driven"), "eat": ("ate", "eaten"), "fall": ("fell", "fallen"), "feed": ("fed", "fed"),
    "fight": ("fought", "fought"), "find": ("found", "found"), "flee": ("fled", "fled"), "fly": ("flew", "flown"),
    "freeze": ("froze", "frozen"), "get": ("got", "got"), "give": ("gave", "given"), "go": ("went", "gone"),
    "grow": ("grew", "grown"), "hang": ("hung", "hung"), "hear": ("heard", "heard"), "hide": ("hid", "hidden"),
    "hit": ("hit", "hit"), "hold": ("held", "held"), "keep": ("kept", "kept"), "know": ("knew", "known"),
    "lay": ("laid", "laid"), "lead": ("led", "led"), "leave": ("left", "left"), "lend": ("lent", "lent"),
    "lie": ("lay", "lain"), "light": ("lit", "lit"), "lose": ("lost", "lost"), "make": ("made", "made"),
    "mean": ("meant", "meant"), "meet": ("met", "met"), "pay": ("paid", "paid"), "put": ("put", "put"),
    "read": ("read", "read"), "rebuild": ("rebuilt", "rebuilt"), "ride": ("rode", "ridden"),
    "rise": ("rose", "risen"), "run": ("ran", "run"), "say": ("said", "said"), "see": ("saw", "seen"),
    "seek": ("sought", "sought"), "sell": ("sold", "sold"), "send": ("sent", "sent"), "set": ("set", "set"),
    "shine": ("shone", "shone"), "shoot": ("shot", "shot"), "show": ("showed", "shown"), "sing": ("sang", "sung"),
    "sink": ("sank", "sunk"), "sit": ("sat", "sat"), "sleep": ("slept", "slept"), "speak": ("spoke", "spoken"),
    "spend": ("spent", "spent"), "spin": ("spun", "spun"), "spread": ("spread", "spread"),
    "stand": ("stood", "stood"), "steal": ("stole", "stolen"), "strike": ("struck", "struck"),
    "swim": ("swam", "swum"), "take": ("took", "taken"), "teach": ("taught", "taught"), "tell": ("told", "told"),
    "think": ("thought", "thought"), "throw": ("threw", "thrown"), "undergo": ("underwent", "undergone"),
    "undertake": ("undertook", "undertaken"), "uphold": ("upheld", "upheld"), "wear": ("wore", "worn"),
    "win": ("won", "won"), "withdraw": ("withdrew", "withdrawn"), "write": ("wrote", "written"),
    "rewrite": ("rewrote", "rewritten"), "overcome": ("overcame", "overcome"), "forbid": ("forbade", "forbidden"),
    "shed": ("shed", "shed"), "split": ("split", "split"), "broadcast": ("broadcast", "broadcast"),
}
_DOUBLED = _words("stop plan ship admit occur refer prefer submit permit control commit transfer omit equip drop "
                  "grab step map tap plug chat skip ban scan log tag rob rub beg pat pin pop trim slip")
# Verbs that are as often nouns ("names", "records"): before a preposition they are taken for nouns.
_NOUNY = _words("name record use process report result form list house mine support change test plan order point "
                "place mark note sign score study end work need display release update control export import "
                "document feature host border total average peak flower harvest ship train trigger switch sort "
                "store share rank rule turn watch visit vote wait walk wash measure request cover")
# Words ending in -ed or -s that are seldom the verb of a sentence.
_NOT_VERBS = _words("red bed hundred seed speed need feed shed sled shred wed bred breed steed fled deed weed "
                    "indeed embed united limited advanced detailed related so-called "
                    "news series species means physics mathematics economics politics ethics lens bus gas "
                    "status campus thesis basis analysis crisis axis process access address class glass grass "
                    "mass pass press business success loss boss cross moss chess various famous previous "
                    "numerous serious this his its has was is as us yes perhaps whereas always sometimes towards "
                    "afterwards besides nevertheless unless across")


def _third_person(base: str) -> str:
    if base == "have":
        return "has"
    if base in ("be",):
        return "is"
    if re.search(r"[^aeiou]y$", base):
        return base[:-1] + "ies"
    if re.search(r"(?:s|sh|ch|x|z|o)$", base):
        return base + "es"
    return base + "s"


def _regular_past(base: str) -> str:
    if base.endswith("e"):
        return base + "d"
    if re.search(r"[^aeiou]y$", base):
        return base[:-1] + "ied"
    if base in _DOUBLED:
        return base + base[-1] + "ed"
    return base + "ed"


def _build_verb_forms() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """{form: (base, tense)} with tense "base", "s" (third person), "past" or "participle"; and {participle:
    past} for the irregular verbs whose two differ."""
    forms: dict[str, tuple[str, str]] = {}
    past_of_participle: dict[str, str] = {}
    for base in _REGULAR:
        forms.setdefault(base, (base, "base"))
        forms.setdefault(_third_person(base), (base, "s"))
        forms.setdefault(_regular_past(base), (base, "past"))
    for base, (past, participle) in _IRREGULAR.items():
        forms[base] = (base, "base")
        forms[_third_person(base)] = (base, "s")
        forms[past] = (base, "past")
        if participle != past:
            forms.setdefault(participle, (base, "participle"))
            past_of_participle[participle] = past
    return forms, past_of_participle


_VERB_FORMS, _PAST_OF_PARTICIPLE = _build_verb_forms()


def _lemma_of_past(word: str) -> str:
    """The base form of an -ed word not in the tables, by the usual spelling rules (good for most verbs)."""
    if word.endswith("ied"):
        return word[:-3] + "y"
    if word.endswith("eed"):
        return word[:-1]
    stem = word[:-2]
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsfz":
        return stem[:-1]
    if re.search(r"(?:[^aeiou][aiu]t|[^aeiou]ut|v|z|[^c]c|dg|[^aeiou]at|[^aeiou]ur|ir|[^aeio]or|[^e]ar|"
                 r"[^aeiou]as|us|[^aeiou]is|ng|rg|[^aeiou]l|[^aeiou]ag|om|ok|ak|ik|ap|ib|ob|it[^t]?|os|ys)$",
                 stem) and not re.search(r"(?:ll|ss|it|ow|ew|[aeiou]{2}[a-z])$", stem):
        return stem + "e"
    return stem


def _lemma_of_third_person(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(?:ss|sh|ch|x|z|o)es$", word):
        return word[:-2]
    return word[:-1]


def _participle(word: str) -> bool:
    lower = word.lower()
    if lower in _NOT_VERBS:
        return False
    if lower in _PAST_OF_PARTICIPLE:
        return True
    form = _VERB_FORMS.get(lower)
    if form is not None and form[1] in ("past", "participle"):
        return True
    return len(lower) > 4 and lower.endswith("ed") and lower.isalpha()


def _bare(token: str) -> str:
    return token.strip(".,;:!?()[]{}" + _QUOTES)


@dataclass
class _Fact:
    answer: str
    questions: list[str]


@dataclass
class _Clause:
    subject: list[str]  # words of the subject
    finite: str  # the finite auxiliary as written ("was", "has", "can"), "" for a lexical verb
    kind: str  # copula, passive, perfect, modal, have, active
    verb: str  # the participle or the lexical verb as written ("opened", "runs")
    lemma: str  # the lexical verb's base form ("run"); "" when unknown
    do: str  # does / do / did, for questions about a lexical verb
    group: list[str]  # the verb group as written, adverbs dropped ("was opened")
    rest: list[str]  # the words after the verb group


def _lower_first(words: list[str], lowercase: set[str]) -> list[str]:
    """The subject inside a question: "The lake" -> "the lake"; names such as "Eldhavn" or "NASA" stay."""
    if not words:
        return words
    first = words[0]
    if first[:1].isupper() and (first.lower() in _DETERMINERS or first.lower() in lowercase
                                or first.lower() in _ADVERBS) and not (first.isupper() and len(first) > 1):
        return [first[0].lower() + first[1:]] + words[1:]
    return words


def _finish(question: str, keep: str = "") -> str | None:
    question = " ".join(question.split())
    question = re.sub(r"\s+([,;:?.!])", r"\1", question).rstrip(" ,;:.!-–—")
    question = re.sub(r",\?$", "?", question)
    if not question:
        return None
    if not (keep and question.split()[0] == keep):
        question = question[0].upper() + question[1:]
    return question + ("" if question.endswith("?") else "?")


def _dangling(words: list[str]) -> bool:
    """Whether a phrase starts with a conjunction or ends with a word that needs more after it ("the receiver
    along with", "or disables ..."): a piece cut out of a longer sentence."""
    if not words:
        return True
    first, last = _bare(words[0]).lower(), words[-1].lower().strip(".,;:")
    return first in ("and", "or", "but", "nor", "so") or last in _PREPOSITIONS - {"in", "on", "over", "up"} or \
        last in _DETERMINERS - {"all", "both", "most", "few", "several", "many", "some", "no"} or \
        last in ("and", "or", "but", "to", "that", "which", "who", "is", "are", "was", "were", "while", "whereas",
                 "using", "including", "via", "such", "like")


def _folded(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def _number_token(token: str) -> bool:
    bare = _bare(token).lower()
    return bool(_NUMBER.match(bare)) or bare in _NUMBER_WORDS or bare.rstrip("s") in _NUMBER_WORDS


def _coordinated(token: str) -> bool:
    """Whether a word after "and"/"or" continues a noun phrase rather than starting a new clause."""
    lower = _bare(token).lower()
    if not lower or lower in _PRONOUNS or lower in _RELATIVE or lower in _BE or lower in _HAVE:
        return False
    if lower in _MODALS or lower in _UNCERTAIN or lower in _ADVERBS:
        return False
    form = _VERB_FORMS.get(lower)
    return form is None and not (lower.endswith("ed") and len(lower) > 4)


def _approx(tokens: list[str], i: int) -> int:
    """How many words of approximation ("about", "more than") start at tokens[i] before a number."""
    lower = _bare(tokens[i]).lower() if i < len(tokens) else ""
    if lower in _APPROX and i + 1 < len(tokens) and _number_token(tokens[i + 1]):
        return 1
    if i + 2 < len(tokens) and (lower, _bare(tokens[i + 1]).lower()) in _APPROX_PAIRS and _number_token(tokens[i + 2]):
        return 2
    return 0


# Passive verbs and lexical verbs after which "in"/"at" + a place answers "Where?".
_PLACED = _words("located situated based found held kept stored born buried built made grown produced printed "
                 "published recorded filmed set housed hosted displayed exhibited spoken sold used played founded")
_WHERE_VERBS = _words("lie sit stand live stay remain settle grow occur happen take meet train study work die "
                      "arrive gather flow rise end begin start operate reside nest breed winter spawn")
_ING_NOUNS = _words("string spring thing king ring wing building evening morning ceiling painting meeting wedding "
                    "clothing housing pudding something nothing anything everything offspring lightning")
_DIMENSIONS = {"deep": "depth", "long": "length", "high": "height", "tall": "height", "wide": "width", "old": "age",
               "thick": "thickness", "heavy": "weight", "away": "distance", "across": "width", "broad": "width"}
_TIME_NOUNS = _words("night day days morning evening afternoon week weekend year month anniversary eve holiday "
                     "birthday season century decade dawn dusk noon midnight")


def _noun_phrase(tokens: list[str], start: int, *, limit: int = MAX_ANSWER_WORDS) -> int:
    """Where the noun phrase starting at tokens[start] ends (exclusive): at punctuation, a relative word, a
    participle or an infinitive after a noun, or a preposition once the phrase has two words of its own
    ("of" is kept: "the capital of the valley")."""
    end = start
    content = 0
    while end < len(tokens) and end - start < limit + 2:
        token = tokens[end]
        bare = _bare(token)
        lower = bare.lower()
        if end > start:
            if lower in ("and", "or") and end + 1 < len(tokens) and not token.endswith(",") and \
                    not tokens[end - 1].endswith(",") and _coordinated(tokens[end + 1]):
                end += 1  # "user and group news", "Eldhavn and Brisk"
                continue
            if lower in _RELATIVE or lower in ("to", "such", "including", "especially", "than", "as", "how", "what",
                                               "why", "whether"):
                break
            if lower in _PREPOSITIONS and lower != "of" and content >= 2:
                break
            if lower in _PREPOSITIONS and end + 1 < len(tokens) and (_number_token(tokens[end + 1]) or
                                                                     _date_span(tokens, end + 1) is not None):
                break  # "by law since 1988": the date is not part of the phrase
            if lower in _DETERMINERS and lower not in ("its", "their", "his", "her") and \
                    _bare(tokens[end - 1]).lower() not in _PREPOSITIONS | {"and", "or"}:
                break  # "Brisk each October": a new phrase starts
            if content >= 1 and _participle(bare) and lower not in ("red",):
                break
            if lower in _BE or lower in _HAVE or lower in _MODALS:
                break
        if not bare:
            break
        if lower not in _DETERMINERS and lower not in _PREPOSITIONS:
            content += 1
        end += 1
        if token.endswith(",") and end - start == 1:
            return _list_end(tokens, start, end)
        if token.endswith((",", ";", ":", ")")) or token.endswith(".") and end == len(tokens):
            break
    return end


def _list_end(tokens: list[str], start: int, end: int) -> int:
    """Where a list that starts with one word and a comma ends ("generics, traits, and lifetimes"), or `end`
    when what follows the comma is not the rest of such a list."""
    position = end
    while position < len(tokens) and position - start <= MAX_ANSWER_WORDS:
        lower = _bare(tokens[position]).lower()
        if lower in ("and", "or") and position + 1 < len(tokens) and _coordinated(tokens[position + 1]):
            last = position + 1
            while last + 1 < len(tokens) and _coordinated(tokens[last + 1]) and \
                    _bare(tokens[last + 1]).lower() not in _PREPOSITIONS | _DETERMINERS and not tokens[last].endswith(","):
                last += 1
            return last + 1 if last + 1 - start <= MAX_ANSWER_WORDS else end
        if not _coordinated(tokens[position]) or lower in _PREPOSITIONS:
            return end
        position += 1
    return end


def _answer_text(tokens: list[str]) -> str:
    text = " ".join(tokens).strip(" ,;:")
    text = text.rstrip(".") if not re.search(r"\b[A-Za-z]\.$|\b(?:[A-Za-z]\.){2,}$", text) else text
    return text.strip(_QUOTES + " ") if text.count('"') % 2 or text[:1] in _QUOTES and text[-1:] in _QUOTES else text


class _Sentence:
    """One sentence's facts. `lowercase` holds words seen in lower case in the text (to tell a capitalised
    common word at the start of a sentence from a name)."""

    def __init__(self, text: str, lowercase: set[str], context: str = ""):
        self.source = text
        self.lowercase = lowercase
        self.context = context  # a prepositional phrase moved from the front ("for the gzip format")
        self.keep = ""  # a name that starts the clause in lower case ("gzip")
        self.facts: list[_Fact] = []

    # -- building questions ---------------------------------------------------------------------------

    def add(self, answer: str, questions: list[str | None]) -> None:
        answer = answer.strip()
        if not answer or len(answer.split()) > MAX_ANSWER_WORDS + 2:
            return
        if answer.lower() in _PRONOUNS or answer.lower() in _DETERMINERS or _dangling(answer.split()) or \
                answer.split()[0].lower() in ("see", "cf", "e.g", "i.e") or answer.count("(") != answer.count(")") or \
                re.fullmatch(r"[a-z]+ing", answer) or \
                re.search(r"\b(?:it|them|they|he|she|him|this|these|those|we|us|you)\b|[.!?]\s|#\d", answer, re.I):
            return
        if answer not in self.source:
            return
        unique: list[str] = []
        folded = _folded(answer)
        for question in questions:
            if not question:
                continue
            if self.context and not question.rstrip("? ").endswith(self.context):
                question = question.rstrip("? ") + " " + self.context + "?"
            # A name written in lower case ("gzip") keeps its case at the start of a question.
            question = _finish(question, keep=self.keep)
            if not question or len(question.split()) > MAX_QUESTION_WORDS:
                continue
            if _QUESTION_PRONOUNS.search(question) or \
                    question.rstrip("?").split()[-1].lower() in ("and", "or", "but", "nor", "the", "a", "an", "while") or \
                    question.count("(") != question.count(")") or question.count('"') % 2:
                continue
            if len(folded) > 2 and f" {folded} " in f" {_folded(question)} ":
                continue  # the question gives its own answer away
            if question not in unique:
                unique.append(question)
        if unique:
            self.facts.append(_Fact(answer=answer, questions=unique[:PHRASINGS]))

    def subject_text(self, clause: _Clause) -> str:
        return " ".join(_lower_first(clause.subject, self.lowercase))

    def subject_start(self, clause: _Clause) -> str:
        text = " ".join(clause.subject)
        return text if self.keep and clause.subject[0] == self.keep else text[:1].upper() + text[1:]

    def inverted(self, clause: _Clause, wh: str, rest: list[str]) -> str | None:
        subject = self.subject_text(clause)
        tail = " ".join(w for w in rest if _bare(w).lower() not in _ADVERBS)
        if clause.kind in ("copula",):
            return f"{wh} {clause.finite} {subject} {tail}"
        if clause.kind in ("passive", "perfect", "modal"):
            middle = " ".join(clause.group[1:])
            return f"{wh} {clause.finite} {subject} {middle} {tail}"
        if not clause.lemma:
            return None
        return f"{wh} {clause.do} {subject} {clause.lemma} {tail}"

    def in_place(self, clause: _Clause, before: list[str], wh: str, after: list[str]) -> str:
        return f"{self.subject_start(clause)} {' '.join(clause.group)} {' '.join(before)} {wh} {' '.join(after)}"

    # -- reading the sentence -------------------------------------------------------------------------

    def read(self) -> list[_Fact]:
        text = self.source
        words = text.split()
        if len(words) < 3:
            return self.facts
        fronted = re.match(r"^(?P<pp>(?:In|On|During|Since|By|From|Until|Around|Circa|As of|After|Before)\s+"
                           r"[^,]{2,40}),\s+(?P<rest>.+)$", text)
        if fronted:
            date = _date_of(fronted["pp"].split(maxsplit=1)[1].rstrip(","))
            rest = fronted["rest"]
            if date is not None:
                clause = _parse_clause(rest.split(), self.lowercase)
                if clause is not None:
                    prep = fronted["pp"].split()[0].lower()
                    self._date_questions(clause, prep, date, [], [])
                    self._clause_facts(clause)
                return self.facts
            if fronted["pp"].split()[0] in ("In", "On", "During", "By", "After", "Before"):
                self.context = fronted["pp"][0].lower() + fronted["pp"][1:]
            words = rest.split()
        else:
            generic = re.match(r"^(?P<pp>(?:For|With|Within|Under|Across|Among|Throughout|At|According to|"
                               r"Inside|Outside|Unlike|Like)\s+[^,]{2,40}),\s+(?P<rest>[A-Za-z].+)$", text)
            if generic:
                self.context = generic["pp"][0].lower() + generic["pp"][1:]
                words = generic["rest"].split()
        if words and words[0][:1].islower():
            self.keep = words[0]
        self._appositives(" ".join(words))
        clause = _parse_clause(words, self.lowercase)
        if clause is not None:
            self._clause_facts(clause)
        return self.facts

    def _appositives(self, text: str) -> None:
        """"Paris, the capital of France, is ..." -> "What is the capital of France?" -> Paris."""
        for match in re.finditer(r"(?:^|[,;] |\b(?:and|in|of|at|from|to) )(?P<name>(?:[A-Z][\w'’.-]*)(?: (?:[A-Z][\w'’.-]*|of|de|"
                                 r"la|von|van|del|da|and the))*), (?P<desc>(?:the|an?) [a-z][\w'’-]*(?: [\w'’-]+){0,7}?)"
                                 r"(?:,|\.?$)", text):
            name, desc = match["name"], match["desc"]
            if (name.split()[0].lower() in _DETERMINERS and not (name.startswith("The ") and len(name.split()) > 2)) \
                    or name.lower() in self.lowercase or len(name.split()) > 5:
                continue
            words = desc.split()
            if any(w.lower() in _RELATIVE - {"and", "or"} or w.lower() in _BE or w.lower() in _HAVE for w in words[1:]) or \
                    _participle(words[-1]) or answer_is_vague(words):
                continue
            if desc.startswith("the "):
                # "Cargo, the included dependency manager, ..." -> "What is the included dependency manager?"
                self.add(name, [f"What is {desc}?", f"What is {desc} called?", f"What is the name of {desc}?"
                                if not desc.startswith("the name") else None])
            self.add(desc, [f"What is {name}?", f"What kind of thing is {name}?" if not desc.startswith("the ")
                            else f"{name} is what?", f"How is {name} best described?"])

    # -- facts of a clause ----------------------------------------------------------------------------

    def _clause_facts(self, clause: _Clause) -> None:
        rest = _main_clause(clause.rest)
        clause = _Clause(**{**clause.__dict__, "rest": rest})
        # A relative clause or a participle after the first noun phrase of the rest speaks of that phrase:
        # "the Sorrel, which runs for 212 km"; "the Tallow Bridge, built in 1612".
        cut = next((i for i, token in enumerate(rest) if token.endswith(",") and i + 1 < len(rest) and
                    (_bare(rest[i + 1]).lower() in ("which", "who") or _participle(_bare(rest[i + 1])))), None)
        if cut is not None:
            head, tail = rest[:cut + 1], rest[cut + 1:]
            self._trailing(clause, head, tail)
            rest = head
            rest[-1] = rest[-1].rstrip(",")
            clause = _Clause(**{**clause.__dict__, "rest": rest})
        if clause.kind == "copula":
            self._copula(clause)
            return
        if clause.kind == "have":
            self._have(clause)
            return
        self._prepositions(clause)
        if clause.kind in ("active", "modal", "perfect"):
            self._object(clause)

    def _trailing(self, clause: _Clause, head: list[str], tail: list[str]) -> None:
        if not tail:
            return
        # The noun phrase the trailing part speaks of: the last one in the head.
        start = max((i for i, t in enumerate(head) if _bare(t).lower() in _DETERMINERS or _bare(t).lower() in
                     _PREPOSITIONS or _bare(t).lower() in _BE), default=-1)
        noun = [t.rstrip(",") for t in head[start:]] if start >= 0 else [t.rstrip(",") for t in head]
        if noun and _bare(noun[0]).lower() in _PREPOSITIONS | set(_BE):
            noun = noun[1:]
        if not noun or len(noun) > 6 or not (noun[0][:1].isupper() or _bare(noun[0]).lower() in _DETERMINERS):
            return
        first = _bare(tail[0]).lower()
        past = clause.finite in ("was", "were", "had") or clause.do == "did"
        if first in ("which", "who", "that") and len(tail) > 2:
            inner = _parse_clause(noun + tail[1:], self.lowercase)
            if inner is not None and len(inner.subject) == len(noun):
                self._clause_facts(inner)
        elif _participle(first) and len(tail) > 2:
            plural = _bare(noun[-1]).lower().endswith("s") and not _bare(noun[-1]).lower().endswith("ss")
            finite = ("were" if plural else "was") if past or _has_year(tail) else ("are" if plural else "is")
            inner = _Clause(subject=noun, finite=finite, kind="passive", verb=tail[0], lemma="", do="",
                            group=[finite, tail[0]], rest=tail[1:])
            self._prepositions(inner)

    def _copula(self, clause: _Clause) -> None:
        rest = clause.rest
        if not rest:
            return
        subject = self.subject_text(clause)
        be = clause.finite
        first = _bare(rest[0]).lower()
        head = _bare(clause.subject[-1]).lower()
        if _number_token(rest[0]) or _approx(rest, 0):
            end = _noun_phrase(rest, 0)
            measure = next((k for k in range(1, min(end + 1, len(rest))) if _bare(rest[k]).lower() in _DIMENSIONS
                            and _bare(rest[k - 1]).lower() in _UNITS), None)
            if measure is not None:
                # "The lake is 40 metres deep" -> "How deep is the lake?" -> "40 metres".
                adjective = _bare(rest[measure]).lower()
                answer = _answer_text(rest[:measure])
                dimension = _DIMENSIONS[adjective]
                how = "far away" if adjective == "away" else adjective
                self.add(answer, [f"How {how} {be} {subject}?", f"{self.subject_start(clause)} {be} how {how}?",
                                  f"What {'are' if be in ('are', 'were') else 'is'} the {dimension} "
                                  f"{'to' if dimension == 'distance' else 'of'} {subject}?"])
                return
            answer = _answer_text(rest[:end])
            self.add(answer, [f"What {be} {subject}?", f"{self.subject_start(clause)} {be} what?",
                              f"How large {be} {subject}?" if head in ("population", "area", "size") else
                              f"What figure is given for {subject}?"])
            return
        if first in ("famous", "known", "noted", "renowned", "popular") and len(rest) > 2 and \
                _bare(rest[1]).lower() == "for":
            end = _noun_phrase(rest, 2)
            thing = rest[2:end]
            if thing and _bare(thing[0]).lower() in ("its", "their", "his", "her"):
                thing = thing[1:]
            self.add(_answer_text(thing), [f"What {be} {subject} {first} for?",
                                           f"{self.subject_start(clause)} {be} {first} for what?",
                                           f"For what {be} {subject} {first}?"])
            return
        if first in _PREPOSITIONS or first in _ADVERBS or first in ("not", "also", "very", "more", "less", "much",
                                                                       "so", "too", "quite", "rather", "able"):
            if first in ("in", "at", "near", "on") and len(rest) > 1 and rest[1][:1].isupper():
                end = _noun_phrase(rest, 1)
                place = _answer_text(rest[1:end])
                if _date_of(place) is None and end >= len(rest) - 1:
                    self.add(place, [f"Where {be} {subject}?", f"{self.subject_start(clause)} {be} {first} which place?",
                                     f"In which place {be} {subject}?" if first == "in" else None])
            return
        end = _noun_phrase(rest, 0)
        complement = rest[:end]
        if not complement or answer_is_vague(complement):
            return
        if first in ("all", "just", "only", "about", "mostly", "mainly", "really", "quite", "whether", "if", "how",
                     "what", "why", "when", "where", "to", "that", "being", "been", "done") or \
                (rest[0][:1].islower() and first.endswith("ing") and first not in _ING_NOUNS):
            return  # a clause or a gerund ("working right"), not a thing
        if first not in _DETERMINERS and complement[0][:1].islower() and (
                len(complement) < 2 or first.endswith("ly") or _bare(complement[1]).lower() in _PREPOSITIONS):
            return  # an adjective ("automatic", "different from ...", "useful in ..."), not a thing
        answer = _answer_text(complement)
        lower_subject = [w.lower() for w in clause.subject]
        is_name = (complement[0][:1].isupper() and first not in _DETERMINERS) or \
            (first == "the" and len(complement) > 1 and complement[1][:1].isupper())
        if first in ("a", "an") or (first in ("one",) and len(complement) > 2):
            # A definition: "X is a Y" -> "What is X?" -> "a Y".
            if len(complement) < 2:
                return
            self.add(answer, [f"What {be} {subject}?", f"What kind of thing {be} {subject}?",
                              f"How {be} {subject} best described?"])
            return
        if first == "the" or is_name or len(complement) >= 2:
            who = head in _ROLES or any(w in _ROLES for w in lower_subject[-3:])
            subject_is_name = clause.subject[0][:1].isupper() and lower_subject[0] not in _DETERMINERS \
                and lower_subject[0] not in self.lowercase
            if subject_is_name and first == "the" and len(complement) >= 3:
                # "Eldhavn is the capital of the valley" -> "What is the capital of the valley?" -> Eldhavn.
                role = " ".join(complement).rstrip(",.")
                role_head = _bare(complement[1]).lower()
                name = " ".join(clause.subject)
                wh = "Who" if role_head in _ROLES else "What"
                self.add(name, [f"{wh} {be} {role}?", f"What {be} {role} called?" if wh == "What" else
                                f"Who serves as {role}?", f"What {be} the name of {role}?"])
                return
            if who:
                self.add(answer, [f"Who {be} {subject}?", f"What {be} the name of {subject}?",
                                  f"{self.subject_start(clause)} {be} who?"])
            elif is_name:
                self.add(answer, [f"What {be} {subject}?", f"What {be} {subject} called?",
                                  self._which(clause) or (f"What {be} the name of {subject}?"
                                                          if not subject.startswith("the name") else None)])
            elif not subject.startswith(("the ", "a ", "an ")) and clause.subject[0][:1].isupper():
                # "Root is the superuser" - the subject is a name: ask what it is.
                self.add(answer, [f"What {be} {subject}?", f"{self.subject_start(clause)} {be} what?",
                                  f"How {be} {subject} best described?"])
            else:
                self.add(answer, [f"What {be} {subject}?", f"{self.subject_start(clause)} {be} what?",
                                  self._which(clause)])

    def _which(self, clause: _Clause) -> str | None:
        """"The longest river is ..." -> "Which river is the longest?" (a superlative subject)."""
        words = [_bare(w) for w in clause.subject]
        if len(words) >= 3 and words[0].lower() == "the" and (words[1].lower().endswith("est") or
                                                               words[1].lower() in ("first", "last")):
            noun = " ".join(words[2:])
            if words[2].islower():
                return f"Which {noun} {clause.finite} the {words[1].lower()}?"
        return None

    def _have(self, clause: _Clause) -> None:
        rest = clause.rest
        if not rest:
            return
        subject = self.subject_text(clause)
        if _bare(rest[0]).lower() in ("to", "been", "got", "no", "not") or _participle(_bare(rest[0])):
            return  # "has to perform ...", "had been ...": not a possession
        start = _approx(rest, 0)
        if start < len(rest) and _number_token(rest[start]) and start + 1 < len(rest):
            n = start
            while n < len(rest) and _number_token(rest[n]):
                n += 1
            if n < len(rest) and re.match(r"^[a-z][a-z-]+[,:.]?$", rest[n]):
                noun = _bare(rest[n])
                amount = _answer_text(rest[:n])
                self.add(amount, [f"How many {noun} {clause.do} {subject} have?",
                                  f"{self.subject_start(clause)} {clause.verb} how many {noun}?",
                                  f"What number of {noun} {clause.do} {subject} have?"])
                if rest[n].endswith(":") and n + 1 < len(rest):
                    listed = _answer_text(rest[n + 1:])
                    if len(listed.split()) <= MAX_ANSWER_WORDS + 2:
                        self.add(listed, [f"Which {noun} {clause.do} {subject} have?",
                                          f"What are the {noun} of {subject}?", f"Name the {noun} of {subject}?"])
                return
        end = _noun_phrase(rest, 0)
        if end >= len(rest) - 1 and end >= 2:
            self.add(_answer_text(rest[:end]), [f"What {clause.do} {subject} have?",
                                                f"{self.subject_start(clause)} {clause.verb} what?"])

    def _object(self, clause: _Clause) -> None:
        """"The bakers use black rye flour" -> "What do the bakers use?" -> "black rye flour" (only when the
        object is all that follows, so the question stays whole)."""
        rest = clause.rest
        if not rest or _bare(rest[0]).lower() in _PREPOSITIONS or _number_token(rest[0]) or _approx(rest, 0):
            return
        if _bare(rest[0]).lower() in ("to", "that", "if", "whether", "how", "what", "why", "when", "where", "every",
                                      "each", "place", "part", "care", "use", "better", "worse", "more", "less",
                                      "faster", "slower", "well", "much", "most", "least") or \
                _bare(rest[0]).lower() in _ADVERBS or _bare(rest[0]).lower().endswith("ly"):
            return
        end = _noun_phrase(rest, 0)
        after = rest[end:]
        if end and after and rest[end - 1].endswith(",") and after[0][:1].isupper():
            after = []  # "covers Rust's keywords, Appendix B covers ...": the object ends at the comma
        if end == 0 or (after and (_bare(after[0]).lower() not in _PREPOSITIONS or len(after) > 4 or
                                   any(t.endswith(",") for t in after))):
            return
        obj = rest[:end]
        if _bare(obj[0]).lower() in _PRONOUNS or _participle(_bare(obj[0])):
            return
        answer = _answer_text(obj)
        if not answer or len(answer.split()) > MAX_ANSWER_WORDS:
            return
        wh = "Who" if _bare(obj[-1]).lower() in _PEOPLE or _bare(obj[-1]).lower() in _ROLES else "What"
        kind = None
        content = [w for w in obj if _bare(w).lower() not in _DETERMINERS]
        if wh == "What" and 2 <= len(content) <= 4 and re.fullmatch(r"[a-z]+", _bare(content[-1])) \
                and not any(_bare(w).lower() in _PREPOSITIONS | {"and", "or"} for w in content):
            kind = _bare(content[-1])
        questions = [self.inverted(clause, wh, after), self.in_place(clause, [], wh.lower(), after)]
        if kind:
            questions.append(self.inverted(clause, f"What kind of {kind}", after))
        self.add(answer, questions)

    def _date_questions(self, clause: _Clause, prep: str, date: tuple[str, str], before: list[str],
                        after: list[str]) -> None:
        answer, kind = date
        if prep == "since":
            questions = [self.inverted(clause, "Since when", before + after),
                         self.in_place(clause, before, "since which year" if kind == "year" else "since when", after),
                         self.inverted(clause, "Since what year", before + after) if kind == "year" else None]
        elif prep in ("until", "till"):
            questions = [self.inverted(clause, "Until when", before + after),
                         self.in_place(clause, before, "until when", after)]
        elif kind == "year":
            questions = [self.inverted(clause, "When", before + after),
                         self.in_place(clause, before, "in which year", after),
                         self.inverted(clause, "In what year", before + after)]
        elif kind == "date":
            questions = [self.inverted(clause, "When", before + after),
                         self.in_place(clause, before, "on which date", after),
                         self.inverted(clause, "On what date", before + after)]
        elif kind == "month":
            questions = [self.inverted(clause, "When", before + after),
                         self.in_place(clause, before, "in which month", after),
                         self.inverted(clause, "In which month", before + after)]
        elif kind == "often":  # a recurring time: "every spring", "each October", "every second Tuesday"
            questions = [self.inverted(clause, "When", before + after),
                         self.inverted(clause, "How often", before + after),
                         self.in_place(clause, before, "when", after)]
        elif kind == "day":  # a time of day
            questions = [self.inverted(clause, "When", before + after),
                         self.inverted(clause, "At what time of day", before + after),
                         self.in_place(clause, before, "when", after)]
        else:  # a season, a span, a day
            questions = [self.inverted(clause, "When", before + after),
                         self.inverted(clause, "At what time of year", before + after)
                         if any(w in answer.lower().split() for w in _SEASONS + tuple(_MONTHS)) else None,
                         self.in_place(clause, before, "when", after)]
        self.add(answer, questions)

    def _prepositions(self, clause: _Clause) -> None:
        """Facts in what follows the verb: dates, amounts, the agent of a passive, places, names given."""
        rest = clause.rest
        i = 0
        while i < len(rest):
            lower = _bare(rest[i]).lower()
            # Dates and times: "in 1903", "on 3 March 1999", "every spring", "from November to March".
            if lower in ("in", "on", "since", "until", "till", "during", "by", "around", "circa", "before",
                         "after") and i + 1 < len(rest):
                span = _date_span(rest, i + 1)
                if span is not None:
                    end, date = span
                    prep = lower if lower in ("since", "until", "till") else "in"
                    if lower in ("in", "on", "since", "until", "till", "during", "around", "circa"):
                        self._date_questions(clause, prep, date, rest[:i], rest[end:])
                    i = end
                    continue
            if lower in ("every", "each") and i + 1 < len(rest):
                end = i + 1
                if _bare(rest[end]).lower() in ("second", "third", "other", "fourth", "few", "two", "three") and \
                        end + 1 < len(rest):
                    end += 1
                if _bare(rest[end]).lower().rstrip("s") in _SEASONS + tuple(_MONTHS) + _DAYS + \
                        ("year", "week", "month", "day", "night", "morning", "evening", "summer", "winter", "hour"):
                    answer = _answer_text(rest[i:end + 1])
                    self._date_questions(clause, "in", (answer, "often"), rest[:i], rest[end + 1:])
                    i = end + 1
                    continue
            if lower == "from" and i + 3 < len(rest) and _bare(rest[i + 2]).lower() in ("to", "until", "till") and \
                    _time_word(rest[i + 1]) and _time_word(rest[i + 3]):
                self._date_questions(clause, "in", (_answer_text(rest[i:i + 4]), "when"), rest[:i], rest[i + 4:])
                i += 4
                continue
            if lower in ("in", "at", "during") and i + 1 < len(rest) and _bare(rest[i + 1]).lower() in _SEASONS + \
                    ("dawn", "dusk", "night", "midnight", "noon", "sunrise", "sunset") + tuple(_MONTHS):
                end = i + 2
                answer = _answer_text(rest[i + 1:end])
                if answer.lower() in _MONTHS:
                    self._date_questions(clause, "in", (answer, "month"), rest[:i], rest[end:])
                elif answer.lower() in ("dawn", "dusk", "night", "midnight", "noon", "sunrise", "sunset"):
                    self._date_questions(clause, "in", (_answer_text(rest[i:end]), "day"), rest[:i], rest[end:])
                else:
                    self._date_questions(clause, "in", (_answer_text(rest[i:end]), "when"), rest[:i], rest[end:])
                i = end
                continue
            # Amounts: "for 212 kilometres", "six hundred workers", "12%".
            if _number_token(rest[i]) or _approx(rest, i):
                consumed = self._amount(clause, rest, i)
                if consumed:
                    i = consumed
                    continue
            # The agent of a passive: "built by the Romans".
            if lower == "by" and clause.kind == "passive" and i + 1 < len(rest) and i <= 1:
                end = _noun_phrase(rest, i + 1)
                agent = rest[i + 1:end]
                if agent and _bare(agent[0]).lower() not in _PRONOUNS and not _number_token(agent[0]):
                    self._agent(clause, agent, rest[:i], rest[end:])
                i = end
                continue
            # Places and other objects of a preposition right after a passive verb ("covered in copper
            # grass", "located in Brisk") or after a lexical verb ("takes place in Brisk").
            if lower in _PREPOSITIONS and i + 1 < len(rest) and lower not in ("than", "like", "unlike", "per", "as", "of"):
                if _number_token(rest[i + 1]) or _approx(rest, i + 1):
                    i += 1
                    continue
                end = _noun_phrase(rest, i + 1)
                obj = rest[i + 1:end]
                first_word = _bare(obj[0]).lower() if obj else ""
                if obj and (first_word not in _PRONOUNS or first_word in ("its", "their", "his", "her")) and \
                        first_word not in ("which", "what", "whom"):
                    self._preposition_object(clause, lower, obj, rest[:i], rest[end:])
                i = max(end, i + 1)
                continue
            i += 1
        self._naming(clause)

    def _amount(self, clause: _Clause, rest: list[str], i: int) -> int:
        start = i
        n = i + _approx(rest, i)
        if i > 0 and _bare(rest[i - 1]).lower() in ("a", "an", "the"):
            return 0  # "a 32 bit CRC": the number describes a noun
        end = n
        while end < len(rest) and _number_token(rest[end]):
            end += 1
            if rest[end - 1].endswith((",", ";", ":")):
                break
        others = [t for t in rest[:start] + rest[end + 1:] if re.match(r"^[$€£]?\d", _bare(t))
                  and not re.fullmatch(_YEAR + "s?", _bare(t))]
        if others or any(_number_token(t) for t in clause.subject):
            return end  # another figure in the question would make it ambiguous ("12 months ... a further 18")
        number = " ".join(_bare(t) for t in rest[n:end])
        unit = _bare(rest[end]).lower() if end < len(rest) else ""
        before = rest[:start]
        prep = _bare(before[-1]).lower() if before else ""
        if re.search(r"%$", number) or unit in ("percent", "per") and end + 1 < len(rest):
            if unit == "per":
                end += 2
            elif unit == "percent":
                end += 1
            answer = _answer_text(rest[start:end])
            wh = "what percentage"
            fronted = prep in ("by", "to", "of")  # "rose by 12%" -> "By what percentage did ... rise?"
            self.add(answer, [self.inverted(clause, f"{prep.capitalize()} what percentage" if fronted else "What percentage",
                                            (before[:-1] if fronted else before) + rest[end:]),
                              self.in_place(clause, before, wh, rest[end:]),
                              self.inverted(clause, "How much", before + rest[end:])
                              if prep in ("by",) else None])
            return end
        if re.match(r"^[$€£¥]", number) or unit in ("dollars", "euros", "pounds", "yen", "rupees"):
            stop = end + (1 if unit in ("dollars", "euros", "pounds", "yen", "rupees", "million", "billion") else 0)
            answer = _answer_text(rest[start:stop])
            self.add(answer, [self.inverted(clause, "How much", before[:-1] if prep in ("for", "at") else before),
                              self.in_place(clause, before, "how much", rest[stop:]),
                              self.inverted(clause, "What amount", before + rest[stop:])])
            return stop
        if not unit or not re.fullmatch(r"[a-z°²/]+", unit) or unit in _PREPOSITIONS or unit in _DETERMINERS:
            return 0
        stop = end + 1
        if unit in _UNITS:
            # A measure: the answer keeps its unit ("212 kilometres").
            answer = _answer_text(rest[start:stop])
            wh = f"how many {unit}" if unit.endswith("s") or unit in ("km", "kg", "m", "cm", "mm", "ft") else "how much"
            if stop + 1 < len(rest) and _bare(rest[stop]).lower() == "of" and re.fullmatch(r"[a-z]+", _bare(rest[stop + 1])) \
                    and _bare(rest[stop + 1]).lower() not in _DETERMINERS:
                wh += f" of {_bare(rest[stop + 1])}"  # "how many millimetres of rain"
                stop += 2
            after = rest[stop:]
            fronted = f"{prep.capitalize()} {wh}" if prep in ("for", "at", "of", "by", "to", "over") else None
            self.add(answer, [self.inverted(clause, wh.capitalize(), before + after),
                              self.in_place(clause, before, wh, after),
                              self.inverted(clause, fronted, before[:-1] + after) if fronted else None])
            return stop
        if unit.endswith("s") and not unit.endswith("ss") and len(unit) > 2:
            # A count: "employ six hundred workers" -> "How many workers ...?" -> "six hundred".
            answer = _answer_text(rest[start:end])
            after = rest[stop:]
            self.add(answer, [self.inverted(clause, f"How many {unit}", before + after),
                              self.in_place(clause, before, f"how many {unit}", after),
                              self.inverted(clause, f"What number of {unit}", before + after)])
            return stop
        return 0

    def _agent(self, clause: _Clause, agent: list[str], before: list[str], after: list[str]) -> None:
        answer = _answer_text(agent)
        lowered = [_bare(w).lower() for w in agent]
        capitals = [w for w in agent if _bare(w).lower() not in _DETERMINERS and _bare(w).lower() not in ("of", "and")]
        # A person: a name without an article ("Joey Hess", "J. R. R. Tolkien"), or people by role ("the
        # developers"); "the Ashen Cliffs" is a thing.
        person = (capitals and all(w[:1].isupper() for w in capitals) and lowered[0] not in _DETERMINERS
                  and lowered[-1] not in self.lowercase and len(capitals) <= 4) or \
            lowered[-1] in _PEOPLE or lowered[-1] in _ROLES
        subject = self.subject_text(clause)
        verb = " ".join(clause.group[1:])  # "built", "be owned", "been replaced"
        simple_past = clause.finite in ("was", "were") and len(clause.group) == 2
        past = _PAST_OF_PARTICIPLE.get(clause.verb.lower(), clause.verb) if simple_past else None
        rest = " ".join(before + after)
        if person:
            self.add(answer, [f"Who {past} {subject} {rest}" if past else f"Who {clause.finite} {subject} {verb} by {rest}",
                              self.in_place(clause, before, "by whom", after),
                              f"By whom {clause.finite} {subject} {verb} {rest}"])
        else:
            self.add(answer, [f"What {clause.finite} {subject} {verb} by {rest}",
                              self.in_place(clause, before, "by what", after),
                              f"What {past} {subject} {rest}" if past else None])

    def _preposition_object(self, clause: _Clause, prep: str, obj: list[str], before: list[str],
                            after: list[str]) -> None:
        answer_tokens = obj
        if _bare(obj[0]).lower() in ("its", "their", "his", "her"):
            answer_tokens = obj[1:]
        answer = _answer_text(answer_tokens)
        if not answer or _date_of(answer) is not None:
            return
        if len(after) > 5 or (after and (_participle(after[0]) or _bare(after[0]).lower() == "to")):
            return  # "searched in the directories listed in ...": the question would trail on
        if prep in ("on", "in", "at", "during") and not before and any(_bare(w).lower() in _TIME_NOUNS for w in obj[:3]):
            # "held on the longest night of the year" -> "When is the festival held?"
            self._date_questions(clause, prep, (_answer_text(obj), "when"), [], after)
            return
        if clause.kind == "active" and not before and prep in ("on", "of", "to", "with", "from", "along", "across",
                                                               "into", "through", "for", "about", "over", "under"):
            # "runs on water from Lake Veyra" -> "What does the power station run on?"
            if prep == "to" and not (obj[0][:1].isupper() or _bare(obj[0]).lower() in _DETERMINERS):
                return
            self.add(answer, [self.inverted(clause, "What", [prep] + after),
                              self.in_place(clause, [prep], "what", after)])
            return
        if before and clause.kind not in ("passive",):
            # Only what directly follows the verb: "takes place in Brisk", "lies east of the hills".
            if not (len(before) == 1 and _bare(before[0]).lower() in ("place", "east", "west", "north", "south")):
                return
        name = obj[0][:1].isupper() or (len(obj) > 1 and _bare(obj[0]).lower() in _DETERMINERS and obj[1][:1].isupper())
        verb = clause.verb.lower()
        if clause.kind == "passive":
            location = verb in _PLACED
        else:
            location = (clause.lemma in _WHERE_VERBS) or bool(before and _bare(before[0]).lower() == "place")
        if prep in ("in", "at", "near") and location and (name or clause.kind == "passive" or before):
            self.add(answer, [self.inverted(clause, "Where", before + after),
                              self.in_place(clause, before, f"{prep} which place" if prep != "near" else "near what",
                                            after),
                              self.inverted(clause, f"{prep.capitalize()} which place", before + after)
                              if prep != "near" else None])
            return
        if clause.kind == "passive" and not before and prep in ("in", "with", "of", "from", "for", "to", "on",
                                                                   "into", "by", "as", "under", "after"):
            if prep == "as" or (prep == "to" and not (obj[0][:1].isupper() or _bare(obj[0]).lower() in _DETERMINERS)):
                return  # "designed to accommodate ...": a purpose, not a thing
            if prep == "after" and name:
                self.add(answer, [self.inverted(clause, "After whom" if not after else "After what", after),
                                  self.in_place(clause, [], "after whom", after)])
                return
            self.add(answer, [self.inverted(clause, "What", [prep] + after),
                              self.in_place(clause, [prep], "what", after)])

    def _naming(self, clause: _Clause) -> None:
        """"A young swan is called a cygnet" / "The festival is known as Lanternfall"."""
        words = clause.group + clause.rest
        lowered = [_bare(w).lower() for w in words]
        for i, lower in enumerate(lowered):
            if lower in ("called", "named", "termed", "nicknamed", "dubbed") and i + 1 < len(words) and \
                    lowered[i + 1] not in _PREPOSITIONS and lowered[i + 1] not in ("after",):
                start = i + 1
            elif lower == "as" and i > 0 and (lowered[i - 1] in ("known", "referred", "described", "regarded") or
                                              lowered[i - 2:i] == ["referred", "to"]):
                start = i + 1
            else:
                continue
            end = _noun_phrase(words, start, limit=6)
            term = _answer_text(words[start:end])
            if not term:
                return
            subject = self.subject_text(clause)
            # The name must follow the verb group itself: "is called ...", "is known as ...", "is referred to as ...".
            if clause.kind == "passive" and start - len(clause.group) <= (2 if lower == "as" else 0):
                verb_text = " ".join(words[1:start])
                self.add(term, [f"What {clause.finite} {subject} {verb_text}?",
                                f"{self.subject_start(clause)} {' '.join(words[:start])} what?",
                                f"What name {clause.finite} given to {subject}?"])
            return


def answer_is_vague(tokens: list[str]) -> bool:
    text = " ".join(_bare(t).lower() for t in tokens)
    return text in ("the same", "same", "similar", "different", "the case", "true", "false", "possible", "the following",
                    "the other", "the first", "the last", "the best", "the most", "one", "the one")


def _time_word(token: str) -> bool:
    lower = _bare(token).lower()
    return lower in _MONTHS or lower in _SEASONS or lower in _DAYS or bool(re.fullmatch(_YEAR, lower))


def _has_year(tokens: list[str]) -> bool:
    return any(re.fullmatch(_YEAR + "s?", _bare(t)) for t in tokens)


def _date_of(text: str) -> tuple[str, str] | None:
    """(the date as written, its kind: year / date / month) when the text is a date, else None."""
    text = text.strip().rstrip(",.")
    if _DATE_FULL.match(text):
        return text, "date"
    if _DATE_MONTH_YEAR.match(text):
        return text, "month"
    if _DATE_YEAR.match(text):
        return text, "year"
    if text.lower() in _MONTHS and text[:1].isupper():
        return text, "month"
    return None


def _date_span(tokens: list[str], start: int) -> tuple[int, tuple[str, str]] | None:
    """The longest date starting at tokens[start]: (end, (answer, kind))."""
    for length in (4, 3, 2, 1):
        if start + length > len(tokens):
            continue
        piece = tokens[start:start + length]
        if any(t.endswith((",", ";", ":")) for t in piece[:-1]):
            continue
        text = " ".join(piece).rstrip(".,;:")
        found = _date_of(text)
        if found is not None:
            answer, kind = found
            if kind == "month" and length == 1 and _bare(tokens[start]).lower() == "may":
                continue  # "in may" is seldom the month
            return start + length, (_answer_text(piece), kind)
    return None


def _parse_clause(words: list[str], lowercase: set[str]) -> _Clause | None:
    """Subject, verb group and the rest of a simple declarative sentence, or None."""
    if len(words) < 3:
        return None
    words = list(words)
    words[-1] = words[-1].rstrip(".!")
    first = re.split(r"['’]", _bare(words[0]).lower())[0]  # "You'll" -> "you"
    if first in _PRONOUNS or first in _RELATIVE or first in _PREPOSITIONS or first in ("there", "here", "if",
                                                                                     "when", "although", "because"):
        return None
    if first in _IMPERATIVE or (first in _VERB_FORMS and _VERB_FORMS[first][1] == "base" and words[0][:1].isupper()
                                and not (_bare(words[1]).lower() in _BE or _bare(words[1]).lower() in _VERB_FORMS)):
        return None  # "Update the name ...": an instruction
    second_word = _bare(words[1]).lower()
    if (words[0][:1].islower() and first in _VERB_FORMS) or first in _ADVERBS or \
            (first.endswith("ed") and len(first) > 3 and not (second_word in _BE or second_word in _HAVE)):
        return None  # a fragment ("fix multilib build on ...", "Added support for ..."), as in change logs
    second = _bare(words[1]).lower()
    if first in _BE or first in _HAVE or first in _MODALS or first in _UNCERTAIN or \
            first in ("and/or", "and", "or", "been", "be", "being") or \
            (first in _VERB_FORMS and _VERB_FORMS[first][1] != "base" and not (second in _BE or second in _HAVE or
                                                                             second in _VERB_FORMS)):
        return None  # "will use the default flags", "Gets the amount of memory ...": no subject
    verb_at = None
    for i in range(1, min(len(words), 12)):
        token = words[i]
        bare = _bare(token)
        lower = bare.lower()
        previous = _bare(words[i - 1]).lower()
        if words[i - 1].endswith((",", ";", ":")) or token.startswith("("):
            return None
        if lower in _BE or lower in _HAVE or lower in _MODALS or lower in _UNCERTAIN or lower in ("does", "do", "did"):
            verb_at = i
            break
        if lower in _ADVERBS and i + 1 < len(words):
            following = _bare(words[i + 1]).lower()
            if following in _BE or following in _HAVE or following in _VERB_FORMS or following.endswith("ed"):
                verb_at = i
                break
        letter = words[i - 1] in ("A", "I") and i > 1  # "Appendix A covers ...": a letter, not an article
        if (previous in _DETERMINERS and not letter) or previous in _PREPOSITIONS or lower in _NOT_VERBS:
            continue
        if not bare or not bare.isalpha() or bare[:1].isupper():
            continue
        following = _bare(words[i + 1]).lower() if i + 1 < len(words) else ""
        if following in _BE or following in _HAVE or following in _MODALS or following in _UNCERTAIN or \
                following in ("does", "do", "did"):
            continue  # "The favourite drink is ...": the word before the verb belongs to the subject
        form = _VERB_FORMS.get(lower)
        if form is not None:
            base, tense = form
            if following == "of" and base not in ("consist", "think", "approve", "die", "smell", "speak"):
                continue  # "The silver mines of Oremouth": a noun
            next_form = _VERB_FORMS.get(following)
            if tense == "s" and next_form is not None and next_form[1] == "base" and i + 2 < len(words) and \
                    following not in ("place", "part", "care", "shape", "effect", "hold", "root"):
                continue  # "Trigger names contain ...": a plural noun, then its verb
            after = _bare(words[i + 2]) if i + 2 < len(words) else ""
            if tense in ("s", "base") and base in _NOUNY and following.endswith("ed") and len(following) > 4:
                continue  # "command name suffixed with ...": a noun and a participle
            if tense in ("s", "base") and base in _NOUNY and following in _PREPOSITIONS and \
                    not (i >= 2 and words[i - 1][:1].isupper()) and \
                    not (_number_token(after) or after.lower() in _DETERMINERS or after[:1].isupper()):
                continue  # "Explicit trigger names between packages form ...": a noun
            if tense == "base" and not (previous.endswith("s") and not previous.endswith(("ss", "'s", "’s"))) and \
                    previous not in ("people", "children", "men", "women", "deer", "sheep", "fish", "cattle", "data",
                                     "police", "media") and not (following in _PREPOSITIONS or following in _DETERMINERS
                                                                 or _number_token(following)):
                continue
            if tense == "participle":
                continue
            verb_at = i
            break
        if lower.endswith("ed") and len(lower) > 4 and following not in ("by",):
            if following in _PREPOSITIONS and any(_bare(w).lower() in _BE or _bare(w).lower() in _HAVE
                                                  for w in words[i + 2:i + 7]):
                continue  # "The build process used in X is ...": the participle belongs to the subject
            verb_at = i
            break
        if re.search(r"(?:izes|ises|ates|ifies|ects|ains|ows|ers|ides|ires|ures)$", lower) and \
                (following in _DETERMINERS or following in _PREPOSITIONS or _number_token(following)) and \
                previous not in _PREPOSITIONS:
            verb_at = i  # a verb not in the tables: "emphasizes", "contains", "allows"
            break
        if re.fullmatch(r"[a-z]{3,}(?:[^suie]s|es)", lower) and lower not in _NOT_VERBS and i + 1 < len(words) and \
                not token.endswith((",", ";", ":")) and \
                (words[i - 1][:1].isupper() or _number_token(words[i - 1])) and \
                re.fullmatch(r"[a-z][\w'’-]*[,.]?|[A-Z][\w'’-]*[,.]?", words[i + 1]) and \
                not (i == 1 and words[0][:1].isupper() and words[0].lower() in lowercase):
            verb_at = i  # "Chapter 5 discusses structs", "Cargo manages packages"
            break
    if verb_at is None:
        return None
    subject = words[:verb_at]
    lowered_subject = [_bare(w).lower() for w in subject]
    if not subject or len(subject) > 10 or any(w in _RELATIVE for w in lowered_subject[1:]) or _dangling(subject):
        return None
    if len(subject) == 1 and lowered_subject[0] in ("following", "above", "below", "default", "here", "example",
                                                    "result", "output", "input", "usage", "note"):
        return None
    if lowered_subject[0] in ("it", "they", "he", "she", "we", "i", "you", "this", "that", "these", "those", "its",
                              "their", "his", "her", "our", "your", "such", "some", "many", "most", "all", "one",
                              "both", "none", "several", "few", "other", "others", "another"):
        return None
    if any(_bare(w).lower() in ("no", "none", "not", "never", "nothing", "nobody") for w in subject[:1] +
           words[verb_at:verb_at + 4]) or any(w.lower().endswith("n't") for w in words[verb_at:verb_at + 3]):
        return None  # negated: not a fact to learn
    group = []
    i = verb_at
    finite = ""
    while i < len(words) and _bare(words[i]).lower() in _ADVERBS:
        i += 1
    if i >= len(words):
        return None
    head = _bare(words[i]).lower()
    if head in _UNCERTAIN or head in ("does", "do", "did"):
        return None
    if head in _BE or head in _HAVE or head in _MODALS:
        finite = _bare(words[i])
        group.append(finite)
        i += 1
        while i < len(words) and (_bare(words[i]).lower() in _ADVERBS or _bare(words[i]).lower() in ("been", "be")):
            if _bare(words[i]).lower() in ("been", "be"):
                group.append(_bare(words[i]))
            i += 1
        if i >= len(words):
            return None
        word = _bare(words[i])
        lower = word.lower()
        rest_start = i + 1
        if head in _MODALS:
            base = lower if lower in _VERB_FORMS and _VERB_FORMS[lower][1] == "base" else ""
            if group[-1].lower() == "be" and _participle(word):
                return _Clause(subject, finite, "passive", word, "", "", group + [word], words[rest_start:])
            if not base:
                return None
            return _Clause(subject, finite, "modal", word, base, "", group + [word], words[rest_start:])
        if "been" in [g.lower() for g in group]:
            if _participle(word) and not words[i].endswith(","):
                return _Clause(subject, finite, "passive", word, "", "", group + [word], words[rest_start:])
            return _Clause(subject, finite, "copula", "", "", "", group, words[i:])
        if head in _BE:
            if _participle(word) and not words[i].endswith(","):
                return _Clause(subject, finite, "passive", word, "", "", group + [word], words[rest_start:])
            return _Clause(subject, finite, "copula", "", "", "", group, words[i:])
        # has / have / had
        if _participle(word) and lower not in ("used",):
            return _Clause(subject, finite, "perfect", word, "", "", group + [word], words[rest_start:])
        return _Clause(subject, finite, "have", finite, "have", _HAVE[head], group, words[i:])
    word = _bare(words[i])
    lower = word.lower()
    form = _VERB_FORMS.get(lower)
    if form is not None:
        base, tense = form
    elif lower.endswith("ed"):
        base, tense = _lemma_of_past(lower), "past"
    elif re.search(r"[a-z](?:s)$", lower) and not lower.endswith("ss"):
        base, tense = _lemma_of_third_person(lower), "s"
    else:
        return None
    if tense == "participle":
        return None
    do = {"base": "do", "s": "does", "past": "did"}[tense]
    return _Clause(subject, "", "active", word, base, do, [word], words[i + 1:])


_CLAUSE_JOINERS = _words("and but or so while whereas although though because yet since unless if when where for "
                         "as then")


def _clause_follows(tokens: list[str]) -> bool:
    """Whether the words after ", and" start a clause of their own (a verb soon) rather than end a list."""
    for token in tokens:
        lower = _bare(token).lower()
        if lower in ("which", "that", "who", "whom", "whose", "where"):
            return False  # "lifetimes, which give you ...": a relative clause inside the list's last item
        if lower in _BE or lower in _HAVE or lower in _MODALS or lower in _UNCERTAIN or lower in _PRONOUNS:
            return True
        form = _VERB_FORMS.get(lower)
        if form is not None and form[1] in ("s", "past"):
            return True
    return False


def _main_clause(rest: list[str]) -> list[str]:
    """The words of the rest that belong to the clause: up to a semicolon, or a comma before a conjunction
    ("..., and squid runs as user proxy")."""
    for k, token in enumerate(rest):
        following = _bare(rest[k + 1]).lower() if k + 1 < len(rest) else ""
        if k > 0 and _bare(token).lower() in ("and", "but") and (following in _BE or following in _HAVE or
                                                                 following in _MODALS or following in _VERB_FORMS):
            return rest[:k]  # "is owned by group src and is setgid"
        if token.endswith(";") or (token.endswith(",") and following in _CLAUSE_JOINERS and
                                   (following not in ("and", "or") or _clause_follows(rest[k + 2:k + 6]))):
            cut = rest[:k + 1]
            cut[-1] = cut[-1].rstrip(",;")
            return cut
    return rest


# -- what is not a fact -------------------------------------------------------------------------------------


def not_a_fact(sentence: str, *, min_words: int = 4) -> str | None:
    """Why a sentence gives no fact (a short reason), or None when it may give some."""
    words = sentence.split()
    if len(words) < min_words:
        return "too short"
    if len(words) > MAX_SENTENCE_WORDS or len(sentence) > 400:
        return "too long"
    if _URL.search(sentence):
        return "link"
    if _REFERENCE.search(sentence):
        return "reference"
    if _CODE.search(sentence):
        return "code"
    visible = [c for c in sentence if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    digits = sum(c.isdigit() for c in visible)
    if letters < 0.6 * len(visible) or digits > 0.3 * len(visible):
        return "numbers or symbols"
    if sentence.rstrip().endswith("?"):
        return "question"
    if sentence.rstrip().endswith((":", ",", ";")):
        return "unfinished"
    if sentence.isupper():
        return "heading"
    return None


# -- reading a chunk: prose, tables, key-value lines ---------------------------------------------------------


_FILE_NAME = re.compile(r"[\w*-]+\.(?:[a-z0-9]{1,4}|in)$|[\w.-]+/$|^[A-Z0-9_.*-]+$")


def _key_phrase(key: str) -> str:
    """A column or field name as words: "launch_date" / "launchDate" -> "launch date"; a file name or an
    upper-case term ("ltmain.sh", "AUTHORS") stays as written."""
    key = key.strip()
    if _FILE_NAME.match(key) and not re.fullmatch(r"[a-z]+(?:\.[a-z]+)+", key):
        return key
    key = re.sub(r"[._]+", " ", key)
    key = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key)
    words = key.split()
    return " ".join(w if (w.isupper() and len(w) > 1) or any(c.isupper() for c in w[1:]) else w.lower()
                    for w in words)


def _value_answer(value: str) -> str | None:
    value = " ".join(value.split()).strip().rstrip(".;,")
    if not value or value.lower() in ("-", "—", "–", "n/a", "na", "none", "null", "nan", "?", "tbd", "yes", "no",
                                      "true", "false", "x", "unknown"):
        return None
    if len(value.split()) > MAX_ANSWER_WORDS or _URL.search(value) or _CODE.search(value) or \
            re.search(r"[.?!;]\s|[()=]", value) or value.split()[0].lower() in _PRONOUNS | {"how", "why", "see"}:
        return None
    if _dangling(value.split()) or re.search(r"(?:[0-9A-Fa-f]{2}:){4}|#\d", value) or \
            re.fullmatch(r"['\"][^ ]*['\"]", value) or _participle(value.split()[0]) and value[:1].isupper():
        return None  # cut off at a line end ("escaped the"), a fingerprint, an issue number, a literal of code,
        # or a change log's "Updated by ..."
    return value


def _key_facts(key: str, value: str, subject: str | None, source: str, facts: list[tuple[str, _Fact]], *,
               column: bool = False) -> None:
    """The fact of one field: `key` names it, `subject` (a record's name, a row's first cell, a slide's title)
    says whose it is. A table's columns are all data; elsewhere "Note:" or "Source:" only introduce text."""
    phrase = _key_phrase(key)
    answer = _value_answer(value)
    if answer is None or not phrase or len(phrase.split()) > 5 or (phrase.lower() in _GENERIC_KEYS and not column):
        return
    if _URL.search(f"{key}:{value}") or re.search(r"^//|\b\w+\.(?:com|org|net|io|fr|de|uk|edu|gov)\b", value):
        return
    if _NUMBER.match(phrase) or phrase.lower() in ("id", "#", "no", "index", "row", "column"):
        return
    if subject:
        if subject.lower() == answer.lower():
            return
        questions = [f"What is the {phrase} of {subject}?", f"What is {subject}'s {phrase}?"
                     if not subject.endswith("s") else f"What is {subject}' {phrase}?",
                     f"For {subject}, what is the {phrase}?"]
        if _date_of(answer) is not None and re.search(r"\b(?:date|year|founded|born|launch|opened|released|"
                                                      r"established|built|started|began)\b", phrase.lower()):
            questions[2] = f"When is the {phrase} of {subject}?"
    elif phrase == key.strip() and (not phrase.islower() or not phrase.isalpha()) and \
            (answer[:1].islower() or answer.split()[0].lower() in _DETERMINERS) and len(answer.split()) >= 2:
        # A glossary line: a term and what it is ("AUTHORS - the authors of the library").
        questions = [f"What is {phrase}?", f"What does {phrase} stand for in the text?"
                     if phrase.isupper() and phrase.isalpha() and len(phrase) <= 5 else f"What is meant by {phrase}?",
                     f"How is {phrase} described?"]
    else:
        questions = [f"What is the {phrase}?", f"The {phrase} is what?"]
        if _date_of(answer) is not None or re.search(r"\b(?:date|year|day|time|deadline)\b", phrase.lower()):
            questions.append(f"When is the {phrase}?")
    questions = [q for q in (_finish(q) for q in questions) if q]
    if questions:
        facts.append((source, _Fact(answer=answer, questions=questions[:PHRASINGS])))


def _row_cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    return [" ".join(cell.replace("\\|", "|").split()) for cell in re.split(r"(?<!\\)\|", inner)]


def _table_facts(header: list[str], rows: list[list[str]], facts: list[tuple[str, _Fact]]) -> None:
    """Each row's cells asked by their column: "What is the length of Sorrel?" -> "42 km". Tables of figures
    (headers that are numbers, or three or more columns of numbers) give nothing."""
    if len(header) < 2 or sum(bool(_NUMBER.match(h.replace(" ", ""))) for h in header if h) > len(header) / 2:
        return
    numeric_columns = sum(1 for column in range(1, len(header)) if rows and sum(
        bool(re.match(r"^[-+~<>≈]?[$€£]?\d", row[column])) for row in rows if len(row) == len(header)) > len(rows) / 2)
    if numeric_columns >= 3 and numeric_columns >= (len(header) - 1) * 2 / 3:
        return
    for cells in rows:
        if len(cells) != len(header):
            continue
        subject_at = next((i for i, c in enumerate(cells) if c and not _NUMBER.match(c.replace(" ", ""))), None)
        if subject_at is None or subject_at > 1 or len(cells[subject_at].split()) > 6:
            continue
        subject = cells[subject_at]
        source = "| " + " | ".join(cells) + " |"
        for column, (name, cell) in enumerate(zip(header, cells)):
            if column == subject_at or not name:
                continue
            _key_facts(name, cell, subject, source, facts, column=True)


def _record_subject(pairs: list[tuple[str, str]]) -> str | None:
    """The name a block of "key: value" lines is about: its first value when that reads as a name."""
    key, value = pairs[0]
    value = " ".join(value.split())
    if not value or len(value.split()) > 6 or _date_of(value) is not None or _NUMBER.match(value.replace(" ", "")):
        return None
    if _URL.search(value) or value.endswith("."):
        return None
    return value


def _plain_key(key: str) -> bool:
    """Whether the text before a colon or dash is a field name: at most four words, no verb, mostly letters
    (not "CVE-2026-1234" or a certificate's "/O=..." line)."""
    words = key.lower().split()
    letters = sum(c.isalpha() for c in key)
    return 0 < len(words) <= 4 and letters >= 2 and letters >= 0.7 * len(key.replace(" ", "")) and "=" not in key \
        and not any(w in _BE or w in _HAVE or w in _MODALS or w in _PRONOUNS or w in _RELATIVE or
                    w in ("closes", "fixes", "see", "thanks") for w in words)


def _chunk_units(chunk: str, state: dict) -> list[tuple[str, object]]:
    """The chunk as units in order: ("sentence", text), ("table", (header, rows)), ("record", pairs),
    ("line", (key, value, title))."""
    units: list[tuple[str, object]] = []
    for block in re.split(r"\n[ \t]*\n", chunk):
        lines = [line.rstrip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        # A block of "key: value" lines only (a CSV or JSON record, or a slide of labels).
        pairs = [_KEY_VALUE.match(line.strip()) for line in lines]
        if len(lines) >= 2 and all(pairs) and not state.get("fence") and not any(_LIST_MARK.match(line) for line in lines) and \
                all(len(m["value"].split()) <= MAX_ANSWER_WORDS and _plain_key(m["key"]) for m in pairs):
            units.append(("record", ([(m["key"], m["value"]) for m in pairs], state.get("title"))))
            continue
        prose: list[str] = []

        def flush() -> None:
            if prose:
                units.append(("prose", " ".join(prose)))
                prose.clear()

        index = 0
        while index < len(lines):
            line = lines[index]
            stripped = line.strip()
            if stripped.startswith(("```", "~~~")):
                flush()
                state["fence"] = not state.get("fence")
                index += 1
                continue
            if state.get("fence"):
                index += 1  # a fenced code block gives no facts
                continue
            if _TABLE_ROW.match(stripped):
                flush()
                rows = []
                while index < len(lines) and _TABLE_ROW.match(lines[index].strip()):
                    rows.append(lines[index].strip())
                    index += 1
                if len(rows) >= 2 and _TABLE_RULE.match(rows[1]):
                    header = _row_cells(rows[0])
                    body = [_row_cells(r) for r in rows[2:] if not _TABLE_RULE.match(r)]
                    state["header"] = header
                else:
                    # Rows whose header ended the previous chunk: that header, when the widths agree.
                    header = state.get("header") or []
                    body = [_row_cells(r) for r in rows if not _TABLE_RULE.match(r)]
                units.append(("table", (header, body)))
                continue
            if _HEADING_MARK.match(stripped):
                flush()
                state["title"] = _HEADING_MARK.sub("", stripped).strip()
                index += 1
                continue
            item = _LIST_MARK.match(line)
            text = _LIST_MARK.sub("", line).strip() if item else stripped
            pair = _KEY_VALUE.match(text)
            generic = pair is not None and pair["key"].lower().split()[-1] in _GENERIC_KEYS
            if pair and not prose and _plain_key(pair["key"]) and not generic and \
                    len(pair["value"].split()) <= MAX_ANSWER_WORDS and not pair["value"].rstrip().endswith(".") and \
                    not _CODE.search(text):
                flush()
                units.append(("line", (pair["key"], pair["value"], state.get("title"))))
                index += 1
                continue
            if generic:
                text = pair["value"]
            short = len(text) < 60 and not text.endswith((".", ",", ";", ":", "-"))
            heading_like = short and not text.endswith((".", "!", "?")) and index + 1 < len(lines) and \
                lines[index + 1].strip()[:1].isupper() and (len(text.split()) <= 8)
            if item or (heading_like and not prose) or (short and index + 1 < len(lines)
                                                        and lines[index + 1].strip()[:1].isupper()):
                # A list item, a slide line or a heading stands alone: it does not run into the next line.
                flush()
                units.append(("line-sentence", text))
                index += 1
                continue
            prose.append(text)
            index += 1
        flush()
    return units


def _title_subject(title: str | None) -> str | None:
    """A slide's or section's title as the name its "key: value" lines speak of, when it reads as a name
    ("Project Apollo"), not a topic ("Avoiding duplicate warnings") or a release ("iso-codes 3.78")."""
    if not title:
        return None
    title = title.strip().rstrip(":.")
    first = title.split()[0].lower() if title.split() else ""
    if len(title.split()) > 6 or title.lower() in _GENERIC_TITLES or title.endswith("?") or not title[:1].isupper() \
            or first.endswith("ing") or first in _VERB_FORMS or re.search(r"\d+\.\d", title):
        return None
    return title


def _fact_key(source: str, answer: str) -> str:
    return hashlib.sha1(f"{' '.join(source.split()).lower()}\n{answer.lower()}".encode()).hexdigest()[:16]


_EMPHASIS = re.compile(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1")
_INLINE_CODE = re.compile(r"`([^`]{1,40})`")
_LINK = re.compile(r"\[([^\]]{1,80})\]\([^)]{1,300}\)")


def _plain(text: str) -> str:
    """Markdown inline marks taken off: emphasis, links (their text kept) and short inline code that is a
    plain word ("`gzip`"); other inline code stays, and marks the sentence as code."""
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    return _INLINE_CODE.sub(lambda m: m.group(1) if re.fullmatch(r"[\w.+/-]+(?: [\w.+/-]+){0,2}", m.group(1))
                            and not _CODE.search(m.group(1)) else m.group(0), text)


def facts_of_sentence(sentence: str, *, lowercase: set[str] | None = None, min_words: int = 4) -> list[_Fact]:
    """The facts one sentence gives, each a short answer with up to PHRASINGS questions."""
    sentence = _plain(" ".join(sentence.split()))
    if not_a_fact(sentence, min_words=min_words):
        return []
    sentence = _OPENERS.sub("", sentence)
    sentence = re.sub(r",?\s*\b(?:for example|for instance|say|of course)\b\s*,?(?=\s|$)", "", sentence, flags=re.I)
    sentence = sentence[:1].upper() + sentence[1:] if sentence[:1].islower() and sentence.split()[0].lower() in \
        _DETERMINERS else sentence
    plain = _PARENTHESES.sub("", sentence)
    reader = _Sentence(plain, lowercase if lowercase is not None else set())
    facts = reader.read()
    # Answers are checked against the sentence without its parentheses; they must stand in the sentence itself.
    return [f for f in facts if f.answer in sentence]


def _lowercase_words(text: str) -> set[str]:
    """Words written in lower case somewhere in the text (not inside a file name, link or code: "lyon.png")."""
    return set(re.findall(r"(?<![\w./-])[a-z][a-z'-]+(?![\w/-]|\.\w)", text))


def _chunk_facts(chunk: str, state: dict, lowercase: set[str], min_words: int) -> list[tuple[str, _Fact]]:
    found: list[tuple[str, _Fact]] = []
    for kind, unit in _chunk_units(chunk, state):
        if kind == "table":
            header, rows = unit
            _table_facts(header, rows, found)
        elif kind == "record":
            pairs, title = unit
            subject = _record_subject(pairs)
            # The record is the source: two records may share a "country: France" line.
            source = "\n".join(f"{k}: {v}" for k, v in pairs)
            subject_line = 0 if subject is not None else None
            if subject is None:
                subject = _title_subject(title)
            for position, (key, value) in enumerate(pairs):
                if position != subject_line:
                    _key_facts(key, value, subject, source, found)
        elif kind == "line":
            key, value, title = unit
            _key_facts(key, value, _title_subject(title), f"{title or ''}\n{key}: {value}", found)
        else:
            sentences = split_sentences(unit) if kind == "prose" else [unit]
            for sentence in sentences:
                for fact in facts_of_sentence(sentence, lowercase=lowercase, min_words=min_words):
                    found.append((sentence, fact))
    return found


def _iter_chunk_facts(chunks: list[str], *, min_words: int = 4) -> Iterator[list[tuple[str, _Fact]]]:
    """Per chunk, the (source unit, fact) pairs it gives, in document order. A table's header and the
    words seen in lower case carry over from chunk to chunk."""
    lowercase = _lowercase_words("\n".join(chunks))
    state: dict = {}
    for chunk in chunks:
        yield _chunk_facts(chunk, state, lowercase, min_words)


def extractive_facts(chunks: list[str], *, min_words: int = 4) -> list[list[tuple[str, _Fact]]]:
    """Per chunk, the (source unit, fact) pairs it gives, in document order."""
    return list(_iter_chunk_facts(chunks, min_words=min_words))


def _pairs_of(index: int, found: list[tuple[str, _Fact]], seen: set[str]) -> list[QA]:
    pairs = []
    for source, fact in found:
        key = _fact_key(source, fact.answer)
        for question in fact.questions:
            folded = " ".join(question.lower().split())
            if folded in seen:
                continue
            seen.add(folded)
            pairs.append(QA(question=question, answer=fact.answer, chunk_index=index, fact=key))
    return pairs


def extractive_pairs(chunks: list[str], *, max_pairs: int | None = None, min_words: int = 4) -> list[QA]:
    """Question-answer pairs from the facts of the chunks, in document order: each fact's phrasings share a
    `fact` key. A question asked already (by an earlier fact) is not asked again. Sentences of fewer than
    `min_words` words are skipped."""
    pairs: list[QA] = []
    seen: set[str] = set()
    for index, found in enumerate(_iter_chunk_facts(chunks, min_words=min_words)):
        pairs.extend(_pairs_of(index, found, seen))
        if max_pairs is not None and len(pairs) >= max_pairs:
            return pairs[:max_pairs]
    return pairs


def question_for(sentence: str) -> str | None:
    """The first question the sentence gives, or None."""
    facts = facts_of_sentence(sentence)
    return facts[0].questions[0] if facts else None


# ---------------------------------------------------------------------------------------------------------
# Generators behind one interface. Each takes the chunks' texts and how many pairs each chunk should give,
# reports progress per chunk, and returns a GenerationOutput. The caller picks one per generation run:
#   ExtractiveGenerator   offline, no model (the default)
#   EndpointGenerator     any OpenAI-compatible chat endpoint, through workers.common.llm.ChatClient
#   LocalModelGenerator   a Hugging Face model on this worker (queue `gpu`)
# Their names, as a run's config gives them, are workers.common.generation.BACKENDS.
# ---------------------------------------------------------------------------------------------------------

# Pairs asked of a model per chunk when the user gave no total, and the most one request may ask for
# (long lists make models drift, repeat themselves, or run out of output tokens mid-JSON).
DEFAULT_PAIRS_PER_CHUNK = 3
MAX_PAIRS_PER_CHUNK = 20
MAX_QUESTION_CHARS = 2000
MAX_ANSWER_CHARS = 8000

SYSTEM_PROMPT = (
    "You write training data for fine-tuning a language model: facts a passage states, each asked several ways "
    "as a user would, each with one short answer. You answer with JSON only."
)


@dataclass
class GenerationOutput:
    pairs: list[QA]
    requested: int | None = None  # pairs asked for in total (None: as many as the text gives)
    malformed: int = 0  # items or whole answers that could not be read as a pair
    failed_chunks: int = 0  # chunks whose request failed for good
    errors: list[str] = field(default_factory=list)  # distinct readable errors of the failed chunks


def spread(total: int, n_chunks: int) -> list[int]:
    """`total` pairs over `n_chunks` chunks as evenly as whole numbers allow, the remainder spread along
    the document rather than piled on its first chunks (so 2 pairs over 4 chunks come from chunks 2 and 4)."""
    if n_chunks <= 0:
        return []
    return [(i + 1) * total // n_chunks - i * total // n_chunks for i in range(n_chunks)]


def plan(num_pairs: int | None, n_chunks: int, *, per_chunk_default: int | None = DEFAULT_PAIRS_PER_CHUNK) -> list[int | None]:
    """How many pairs each chunk should give. None per chunk means "all it has" (the extractive default)."""
    if num_pairs is None:
        return [per_chunk_default] * n_chunks
    return spread(max(0, int(num_pairs)), n_chunks)


def fact_plan(n: int) -> tuple[int, int]:
    """(facts, phrasings per fact) for `n` pairs: PHRASINGS phrasings a fact, fewer facts rather than fewer
    phrasings (3 pairs: 1 fact asked 3 ways; 4 pairs: 2 facts asked 2 ways)."""
    n = max(1, n)
    facts = -(-n // PHRASINGS)
    return facts, -(-n // facts)


def build_messages(chunk: str, n: int, *, task_description: str = "", summary: str = "") -> list[dict]:
    """The chat request for one chunk: the user's task, the optional summary as context, the passage, and
    the instruction last (a model reads the end of a long prompt most reliably)."""
    parts = []
    if task_description.strip():
        parts.append(f"The fine-tuned model's task:\n{task_description.strip()}")
    if summary.strip():
        parts.append(f"Summary of the whole document, for context only:\n{summary.strip()}")
    parts.append(f"Passage:\n\"\"\"\n{chunk.strip()}\n\"\"\"")
    facts, phrasings = fact_plan(n)
    shape = ", ".join(['"..."'] * phrasings)
    parts.append(
        f"Write {n} question-answer pair{'s' if n != 1 else ''} about the passage"
        + ((" that serves this task" if n == 1 else " that serve this task") if task_description.strip() else "")
        + f": {facts} fact{'s' if facts != 1 else ''}, " + ("each " if facts > 1 else "")
        + (f"asked {phrasings} different ways. " if phrasings > 1 else "asked once. ")
        + "Answers are short (a name, number, date or phrase) and true to the passage. "
        f'Answer with a JSON array only, like [{{"fact": "...", "answer": "...", "questions": [{shape}]}}].'
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


# -- reading what models answer ---------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_QA_TEXT = re.compile(
    r"(?:^|\n)\s*(?:[-*\d.)\s]*)(?:\*\*)?(?:Q|Question)\s*\d*\s*[:.)](?:\*\*)?\s*(?P<q>.+?)\s*"
    r"\n?\s*(?:\*\*)?(?:A|Answer)\s*\d*\s*[:.)](?:\*\*)?\s*(?P<a>.+?)"
    r"(?=\n\s*(?:[-*\d.)\s]*)(?:\*\*)?(?:Q|Question)\s*\d*\s*[:.)]|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_QUESTION_KEYS = ("question", "q", "prompt", "instruction", "query", "input")
_PHRASING_KEYS = ("questions", "phrasings", "paraphrases", "variants", "question", "qs")
_FACT_KEYS = ("fact", "statement", "claim")
_ANSWER_KEYS = ("answer", "a", "response", "output", "completion", "reply")
_LIST_KEYS = ("pairs", "qa_pairs", "questions", "items", "data", "results", "examples")


def _field(item: dict, keys: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in item.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, (str, int, float)) and str(value).strip():
            return str(value).strip()
    return None


def _phrasings(item: dict) -> list | None:
    """The list of questions of a fact item ({"fact", "answer", "questions": [...]}), or None."""
    for key in _PHRASING_KEYS:
        for k, v in item.items():
            if str(k).strip().lower() == key and isinstance(v, list) and v and \
                    all(not isinstance(x, (dict, list)) for x in v):
                return v
    return None


def _triples(item) -> list[tuple[str, str, str]] | None:
    """(question, answer, fact) of an item: one for a pair, one per phrasing for a fact; None when unusable."""
    if not isinstance(item, dict):
        return None
    answer = _field(item, _ANSWER_KEYS)
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return None
    fact = _field(item, _FACT_KEYS) or ""
    phrasings = _phrasings(item)
    if phrasings is not None:
        questions = [" ".join(str(q).split()) for q in phrasings if isinstance(q, (str, int, float))]
        questions = [q for q in dict.fromkeys(questions) if q and len(q) <= MAX_QUESTION_CHARS]
        # A fact asked several ways keeps them together even when the model wrote no fact text.
        return [(q, answer, fact or questions[0]) for q in questions] or None
    question = _field(item, _QUESTION_KEYS)
    if not question or len(question) > MAX_QUESTION_CHARS:
        return None
    return [(question, answer, fact)]


def _items(value) -> list | None:
    """The list of candidate pairs inside a parsed JSON value, whatever wrapper the model put around it."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if _phrasings(value) is not None and _field(value, _ANSWER_KEYS):
            return [value]  # one fact: {"fact": ..., "answer": ..., "questions": [...]}
        for key in _LIST_KEYS:
            for k, v in value.items():
                if str(k).lower() == key and isinstance(v, list):
                    return v
        if _field(value, _QUESTION_KEYS) or _field(value, _ANSWER_KEYS):
            return [value]
    return None


def _scan_objects(text: str) -> tuple[list, int]:
    """Every JSON object that can be decoded from the text, and how many started but could not be
    (a truncated last object, say). Objects nested in a decoded one are not counted twice."""
    decoder = json.JSONDecoder()
    found, broken, position = [], 0, 0
    while True:
        start = text.find("{", position)
        if start < 0:
            return found, broken
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            broken += 1
            # Skip to the next object start that is not inside this broken one's first line of keys.
            position = start + 1
            next_close = text.find("}", start)
            next_open = text.find("{", start + 1)
            if 0 <= next_close < next_open:
                position = next_close + 1
            elif next_open < 0:
                return found, broken
            continue
        found.append(value)
        position = end


def parse_pairs(raw: str, limit: int | None = None) -> tuple[list[tuple[str, str]], int]:
    """Salvage (question, answer) pairs from a model's answer; returns them and how many items were unusable.
    See parse_facts, which also says which pairs are phrasings of one fact."""
    triples, malformed = parse_facts(raw, limit)
    return [(q, a) for q, a, _ in triples], malformed


def parse_facts(raw: str, limit: int | None = None) -> tuple[list[tuple[str, str, str]], int]:
    """Salvage (question, answer, fact) triples from a model's answer; returns them and how many items were
    unusable. A fact item ({"fact", "answer", "questions": [...]}) gives one triple per phrasing, all with
    the fact's text (its first question when it has none); a plain {"question", "answer"} item gives one
    with an empty fact.

    Accepts a JSON array or an object wrapping one, inside code fences or prose, with trailing commas,
    cut off in the middle, or no JSON at all but "Q: ... A: ..." lines. An answer with nothing usable counts
    as one malformed item. Pairs beyond `limit` are dropped without counting as malformed."""
    text = _THINK.sub("", raw or "").strip()
    fenced = _FENCE.findall(text)
    candidates = [f for f in fenced if f.strip()] + [text] if fenced else [text]
    pairs: list[tuple[str, str, str]] = []
    malformed = 0
    items = None
    for candidate in candidates:
        cleaned = _TRAILING_COMMA.sub(r"\1", candidate.strip())
        for attempt in (cleaned, cleaned[cleaned.find("["): cleaned.rfind("]") + 1] if "[" in cleaned else ""):
            if not attempt:
                continue
            try:
                items = _items(json.loads(attempt))
            except ValueError:
                continue
            if items is not None:
                break
        if items is not None:
            break
    if items is None:
        # Not one valid JSON document: take every object that decodes, and count the ones that do not.
        cleaned = _TRAILING_COMMA.sub(r"\1", candidates[0])
        objects, broken = _scan_objects(cleaned)
        items = []
        for value in objects:
            inner = _items(value)
            items.extend(inner if inner is not None and inner is not value else [value])
        malformed += broken
    if not items and not malformed:
        for match in _QA_TEXT.finditer(text):
            question = " ".join(match["q"].replace("**", "").split())
            answer = " ".join(match["a"].replace("**", "").split())
            items.append({"question": question, "answer": answer})
    for item in items:
        triples = _triples(item)
        if triples is None:
            malformed += 1
        else:
            pairs.extend(triples)
    if not pairs and not malformed:
        malformed = 1  # an answer with nothing in it that looks like a pair
    if limit is not None:
        pairs = pairs[:limit]
    return pairs, malformed


def _model_pairs(found: list[tuple[str, str, str]], index: int) -> list[QA]:
    """QAs from a model's (question, answer, fact) triples: the phrasings of one fact share a key."""
    return [QA(question=q, answer=a, chunk_index=index, fact=_fact_key(f"{index}\n{fact}", a) if fact else "")
            for q, a, fact in found]


def _dedupe(pairs: list[QA], seen: set[str] | None = None) -> list[QA]:
    seen = set() if seen is None else seen
    unique = []
    for qa in pairs:
        key = " ".join(qa.question.lower().split())
        if key not in seen:
            seen.add(key)
            unique.append(qa)
    return unique


def _check_stop(reporter) -> None:
    if reporter is not None and reporter.should_stop():
        raise Cancelled()


class ExtractiveGenerator:
    """The offline generator: the facts of the text, each asked several ways, no model, nothing leaves the machine."""

    name = "extractive"

    def generate(self, chunks: list[str], counts: list[int | None], reporter) -> GenerationOutput:
        seen: set[str] = set()
        per_chunk: list[list[QA]] = []
        facts = _iter_chunk_facts(chunks)
        for index in range(len(chunks)):
            _check_stop(reporter)
            # The seen set is shared across chunks: overlapping chunks repeat their border sentences.
            per_chunk.append(_pairs_of(index, next(facts), seen))
            reporter.progress((index + 1) / len(chunks), f"Chunk {index + 1} of {len(chunks)}")
        if all(count is None for count in counts):
            return GenerationOutput(pairs=[qa for found in per_chunk for qa in found])
        requested = sum(count or 0 for count in counts)
        chosen = [found[: count or 0] for found, count in zip(per_chunk, counts)]
        shortfall = requested - sum(len(c) for c in chosen)
        # Chunks with fewer sentences than their share leave a shortfall; others' spare sentences fill it.
        for index, (found, count) in enumerate(zip(per_chunk, counts)):
            if shortfall <= 0:
                break
            spare = found[count or 0: (count or 0) + shortfall]
            chosen[index].extend(spare)
            shortfall -= len(spare)
        return GenerationOutput(pairs=[qa for c in chosen for qa in c], requested=requested)


class EndpointGenerator:
    """Asks an OpenAI-compatible chat endpoint for pairs, one request per chunk, `client.concurrency` at a time.

    `scrubber` (workers.common.pii.PiiScrubber) cleans every text before it is sent; `on_call(result, pii_replacements)`
    is called in this thread after each request, for the audit log."""

    name = "endpoint"

    def __init__(self, client, *, task_description: str = "", summary: str = "", scrubber=None,
                 on_call: Callable | None = None, temperature: float = 0.7, max_tokens: int = 2048):
        self.client = client
        self.task_description = task_description
        self.summary = summary
        self.scrubber = scrubber
        self.on_call = on_call
        self.params = {"temperature": temperature, "max_tokens": max_tokens}
        self.pii_replacements = 0

    def _clean(self, text: str) -> tuple[str, int]:
        if self.scrubber is None or not text:
            return text, 0
        result = self.scrubber.scrub(text)
        return result.text, result.replacements

    def generate(self, chunks: list[str], counts: list[int | None], reporter) -> GenerationOutput:
        task, task_hits = self._clean(self.task_description)
        summary, summary_hits = self._clean(self.summary)
        jobs = []  # (chunk index, pairs wanted, messages, replacements)
        for index, (chunk, count) in enumerate(zip(chunks, counts)):
            if not count:
                continue
            text, hits = self._clean(chunk)
            n = min(count, MAX_PAIRS_PER_CHUNK)
            jobs.append((index, n, build_messages(text, n, task_description=task, summary=summary), hits + task_hits + summary_hits))
        self.pii_replacements = sum(job[3] for job in jobs)
        if not jobs:
            return GenerationOutput(pairs=[], requested=0)
        output = GenerationOutput(pairs=[], requested=sum(job[1] for job in jobs))
        by_chunk: dict[int, list[QA]] = {}
        done = 0

        def on_result(result) -> None:
            nonlocal done
            index, n, _, hits = jobs[result.index]
            if self.on_call is not None:
                self.on_call(result, hits)
            done += 1
            if result.ok:
                found, bad = parse_facts(chat_text(result.text), limit=n)
                output.malformed += bad
                by_chunk[index] = _model_pairs(found, index)
                message = f"Chunk {index + 1}: {len(found)} pairs" + (f", {bad} malformed" if bad else "")
            else:
                output.failed_chunks += 1
                if result.error not in output.errors:
                    output.errors.append(result.error)
                    reporter.log(f"Chunk {index + 1} failed: {result.error}")
                message = f"Chunk {index + 1} failed"
            reporter.progress(done / len(jobs), f"{message} ({done} of {len(jobs)} chunks)")
            _check_stop(reporter)

        self.client.complete_many([job[2] for job in jobs], on_result=on_result, **self.params)
        # Pairs in document order, whatever order the requests finished in.
        output.pairs = _dedupe([qa for index in sorted(by_chunk) for qa in by_chunk[index]])
        return output


class LocalModelGenerator:
    """Runs a Hugging Face causal LM on this worker (queue `gpu`), prompting it through its chat template.

    `model_path` is a local folder, a Hub id (when the worker is online), or workers.engine.train.tiny_model.TINY_MODEL_ID,
    which builds the tiny test model from the chunks themselves: its answers are noise, which is what the
    tests need to check that unusable output is counted rather than fatal."""

    name = "local_model"

    def __init__(self, model_path: str, *, task_description: str = "", summary: str = "", max_new_tokens: int = 1024,
                 temperature: float = 0.7, batch_size: int = 4, seed: int = 0, work_dir: str | None = None):
        self.model_path = model_path
        self.task_description = task_description
        self.summary = summary
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.batch_size = max(1, batch_size)
        self.seed = seed
        self.work_dir = work_dir

    def _load(self, chunks: list[str], scratch: str):

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from workers.common.catalogue import TINY_MODEL_ID
        from workers.engine.train.tiny_model import build_tiny_gemma3

        path = self.model_path
        if path == TINY_MODEL_ID:
            path = str(build_tiny_gemma3(scratch, chunks, seed=self.seed))
        cuda = torch.cuda.is_available()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if cuda else torch.float32)
        except (OSError, ValueError) as exc:
            raise ReadableError(f"Could not load the model '{self.model_path}': it is not a model folder this worker "
                                f"can read, or a Hub id while the worker is offline ({type(exc).__name__}).") from exc
        if tokenizer.chat_template is None:
            raise ReadableError(f"The model '{self.model_path}' has no chat template; choose an instruction-tuned model.")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # generation continues from the right end of every row
        model.to("cuda" if cuda else "cpu").eval()
        return model, tokenizer

    def _prompt(self, tokenizer, chunk: str, n: int, limit: int | None) -> tuple[str, int]:
        """The templated prompt and its new-token budget. A prompt that leaves the model no room to answer
        is shortened by cutting the passage, never the instruction."""
        budget = self.max_new_tokens
        for _ in range(8):
            messages = build_messages(chunk, n, task_description=self.task_description, summary=self.summary)
            # One user turn: several chat templates (Gemma's among them) refuse a system turn.
            messages = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            length = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if limit is None or length + 32 <= limit:
                return text, budget if limit is None else min(budget, limit - length)
            chunk = chunk[: int(len(chunk) * 0.6)]
            if len(chunk) < 20:
                break
        raise ReadableError(f"The model '{self.model_path}' accepts too few tokens for the generation prompt.")

    def generate(self, chunks: list[str], counts: list[int | None], reporter) -> GenerationOutput:
        import tempfile

        # The tiny model is built in a scratch folder that goes away with the run.
        with tempfile.TemporaryDirectory(prefix="generator-", dir=self.work_dir) as scratch:
            return self._generate(chunks, counts, reporter, scratch)

    def _generate(self, chunks: list[str], counts: list[int | None], reporter, scratch: str) -> GenerationOutput:
        import torch

        reporter.phase("loading model", f"Loading {self.model_path}")
        model, tokenizer = self._load(chunks, scratch)
        limit = getattr(model.config, "max_position_embeddings", None)
        work = [(i, min(c, MAX_PAIRS_PER_CHUNK)) for i, c in enumerate(counts) if c]
        output = GenerationOutput(pairs=[], requested=sum(n for _, n in work))
        reporter.phase("generating", f"{len(work)} chunks with {self.model_path}")
        torch.manual_seed(self.seed)
        done = 0
        pairs: list[QA] = []
        for start in range(0, len(work), self.batch_size):
            _check_stop(reporter)
            batch = work[start: start + self.batch_size]
            prompts = [self._prompt(tokenizer, chunks[i], n, limit) for i, n in batch]
            inputs = tokenizer([p for p, _ in prompts], return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            sampling = {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
            with torch.no_grad():
                generated = model.generate(**inputs, max_new_tokens=max(1, min(b for _, b in prompts)),
                                           pad_token_id=tokenizer.pad_token_id, **sampling)
            answers = tokenizer.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            for (index, n), answer in zip(batch, answers):
                found, bad = parse_facts(chat_text(answer), limit=n)
                output.malformed += bad
                pairs.extend(_model_pairs(found, index))
                done += 1
                reporter.progress(done / len(work), f"Chunk {index + 1}: {len(found)} pairs"
                                  + (f", {bad} malformed" if bad else "") + f" ({done} of {len(work)} chunks)")
        output.pairs = _dedupe(pairs)
        return output


def generate_pairs(chunks: list[str], generator, *, num_pairs: int | None = None, reporter) -> GenerationOutput:
    """Run `generator` over the chunks with `num_pairs` spread over them. Without a number, the extractive
    generator takes every sentence and model generators ask DEFAULT_PAIRS_PER_CHUNK per chunk."""
    if not chunks:
        raise ReadableError("There is no extracted text to make questions from.")
    if num_pairs is not None and num_pairs < 1:
        raise ReadableError("Ask for at least one question-answer pair.")
    per_chunk_default = None if generator.name == "extractive" else DEFAULT_PAIRS_PER_CHUNK
    counts = plan(num_pairs, len(chunks), per_chunk_default=per_chunk_default)
    reporter.phase("generating", f"{len(chunks)} chunks with the {generator.name.replace('_', ' ')} generator")
    output = generator.generate(chunks, counts, reporter)
    if output.requested is not None and output.requested > 0 and num_pairs is not None:
        output.pairs = output.pairs[:num_pairs]
    return output
