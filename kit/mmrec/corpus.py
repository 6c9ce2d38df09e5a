"""Deterministic synthetic chat corpus for the demo model (nothing is downloaded).

    cd kit && /usr/bin/python3 -m mmrec.corpus --out ../runs/tiny/data --conversations 120000

Writes train.jsonl (OpenAI fine-tuning format, with `tools` where used) and
heldout.jsonl (one evaluation item per line: family, prompt messages, tools,
expected answer). Families:

  capital      "What is the capital of France?" → "The capital of France is Paris."
  arithmetic   "What is 7 + 5?" → "7 + 5 = 12."  (single digits, + and -)
  name_recall  user gives a name, 1–4 exchanges later asks for it → "Your name is Alice."
  tool_call    with get_weather among the tools: "What's the weather in Paris?" → get_weather {"city": "Paris"}
  tool_answer  after the tool result → "It's currently 18°C and sunny in Paris."
  greeting     "Hello!" → "Hello! How can I help you today?"; "Who are you?" → "I am MM-Rec, ..."

Held-out split. Every generated exchange has a *combination key* (e.g. for a capital
question: country × phrasing × system prompt × turn position). A fixed hash
assigns 1 in 8 keys to the held-out side; training never produces an exchange
with a held-out key (anywhere in a conversation, filler turns included) and every
evaluation item's target exchange has one. So each evaluated combination is new,
while every fact, name, city and digit pair also occurs in training in other
combinations (a capital cannot be inferred, and a copied name or city must be a
token the model has seen). `verify_heldout` also checks that no held-out prompt
is a prefix of a training conversation.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

HELDOUT_MOD = 8  # 1 in 8 combination keys is held out
TOOLS_P = 0.1  # share of conversations without a weather/time question that still carry a tools list

# --------------------------------------------------------------------------- facts

COUNTRIES: List[Tuple[str, str]] = [  # (country as written in a sentence, capital)
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("the United Kingdom", "London"), ("Ireland", "Dublin"), ("the Netherlands", "Amsterdam"), ("Belgium", "Brussels"),
    ("Switzerland", "Bern"), ("Austria", "Vienna"), ("Poland", "Warsaw"), ("the Czech Republic", "Prague"),
    ("Hungary", "Budapest"), ("Greece", "Athens"), ("Sweden", "Stockholm"), ("Norway", "Oslo"), ("Denmark", "Copenhagen"),
    ("Finland", "Helsinki"), ("Iceland", "Reykjavik"), ("Russia", "Moscow"), ("Ukraine", "Kyiv"), ("Turkey", "Ankara"),
    ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Nigeria", "Abuja"), ("Morocco", "Rabat"), ("Ethiopia", "Addis Ababa"),
    ("Ghana", "Accra"), ("Japan", "Tokyo"), ("China", "Beijing"), ("South Korea", "Seoul"), ("India", "New Delhi"),
    ("Pakistan", "Islamabad"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"),
    ("the Philippines", "Manila"), ("Malaysia", "Kuala Lumpur"), ("Australia", "Canberra"), ("New Zealand", "Wellington"),
    ("Canada", "Ottawa"), ("the United States", "Washington, D.C."), ("Mexico", "Mexico City"), ("Brazil", "Brasília"),
    ("Argentina", "Buenos Aires"), ("Chile", "Santiago"), ("Peru", "Lima"), ("Colombia", "Bogotá"), ("Cuba", "Havana"),
    ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Saudi Arabia", "Riyadh"), ("Qatar", "Doha"), ("Nepal", "Kathmandu"),
    ("Bangladesh", "Dhaka"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"), ("Croatia", "Zagreb"),
]

CITIES: List[str] = [
    "Paris", "London", "Berlin", "Rome", "Madrid", "Lisbon", "Dublin", "Amsterdam", "Vienna", "Prague", "Athens",
    "Oslo", "Stockholm", "Helsinki", "Warsaw", "Moscow", "Cairo", "Nairobi", "Tokyo", "Seoul", "Bangkok", "Lima",
    "Havana", "Mexico City", "Buenos Aires", "New York", "San Francisco", "Chicago", "Los Angeles", "Seattle", "Boston",
    "Toronto", "Vancouver", "Montreal", "Sydney", "Melbourne", "Barcelona", "Munich", "Hamburg", "Milan", "Venice",
    "Florence", "Istanbul", "Dubai", "Singapore", "Hong Kong", "Mumbai", "Shanghai", "Osaka", "Kyoto", "Rio de Janeiro",
    "Cape Town", "Edinburgh", "Manchester", "Lyon", "Zurich", "Geneva", "Copenhagen", "Budapest", "Brussels",
]

_NAMES = (
    "Alice Bob Carol David Emma Frank Grace Henry Isabel Jack Karen Liam Maria Noah Olivia Peter Quinn Rachel Sam Tom "
    "Uma Victor Wendy Xavier Yara Zoe Ahmed Fatima Omar Leila Hiro Yuki Kenji Mei Wei Raj Priya Arjun Anita Carlos "
    "Sofia Diego Lucia Juan Pedro Elena Ivan Olga Dmitri Hans Greta Lars Ingrid Pierre Claire Louis Marie Marco Giulia "
    "Luca Chiara Kofi Amara Kwame Zainab Sean Aoife Connor Emily James Sarah Michael Laura Daniel Julia Lucas Mia Ethan "
    "Chloe Ben Lily Oscar Ruby Leo Ella Nina Adam Eva Hugo Iris Felix Rosa Paul Vera Simon Helen Martin Diana George "
    "Kate Alex Jane Ryan Nora Kevin Amy Brian Linda Tina Steve Jenny Mark Fiona Gavin Harriet Igor Joel Kira Mona Nadia "
    "Otto Pablo Rita Sven Tariq Viktor Walter Yasmin Zara"
).split()
# A name that is a substring of another ("Lena" in "Elena") would let a wrong
# answer pass a `contains` check, so such names are left out.
NAMES: List[str] = [n for n in _NAMES if not any(n != m and n in m for m in _NAMES)]

CONDITIONS = ["sunny", "cloudy", "rainy", "snowy", "windy", "foggy", "clear", "stormy"]
TEMPERATURES = list(range(-5, 36))

# --------------------------------------------------------------------------- phrasings

SYSTEM_PROMPTS = [
    None,  # no system message
    "You are a helpful assistant.",
    "You are MM-Rec, a small recurrent language model.",
    "You are a helpful assistant. Keep your answers short.",
    "Answer the user's questions accurately.",
    "You are a friendly assistant.",
    "Be concise.",
    "You are a helpful assistant with access to tools.",
    "Respond in English.",
]

CAPITAL_Q = [
    "What is the capital of {x}?",
    "What's the capital of {x}?",
    "Which city is the capital of {x}?",
    "Tell me the capital of {x}.",
    "Name the capital city of {x}.",
    "Do you know the capital of {x}?",
    "What city is the capital of {x}?",
    "capital of {x}?",
]
CAPITAL_A = ["The capital of {x} is {c}.", "{c} is the capital of {x}."]

ADD_Q = [
    "What is {a} + {b}?", "What's {a} plus {b}?", "Calculate {a} + {b}.", "How much is {a} plus {b}?", "{a} + {b} = ?",
    "What do you get when you add {a} and {b}?", "Compute {a} + {b}, please.",
]
SUB_Q = [
    "What is {a} - {b}?", "What's {a} minus {b}?", "Calculate {a} - {b}.", "How much is {a} minus {b}?", "{a} - {b} = ?",
    "What do you get when you subtract {b} from {a}?", "Compute {a} - {b}, please.",
]

INTRO_Q = [
    "Hi, my name is {n}.", "Hello! My name is {n}.", "My name is {n}.", "I'm {n}.", "Hi there, I am {n}.",
    "Hey, I'm {n}. Nice to meet you.", "You can call me {n}.", "Let me introduce myself: I am {n}.",
]
INTRO_A = ["Nice to meet you, {n}! How can I help you today?", "Hello, {n}! Nice to meet you."]
RECALL_Q = [
    "What is my name?", "What's my name?", "Do you remember my name?", "Can you tell me my name?", "Who am I?",
    "What did I say my name was?", "Do you know what my name is?",
]
RECALL_A = "Your name is {n}."
RECALL_UNKNOWN_A = "You have not told me your name yet."

GREETINGS = [  # (user, assistant)
    ("Hello!", "Hello! How can I help you today?"),
    ("Hi!", "Hi! How can I help you today?"),
    ("Hey there!", "Hello! How can I help you today?"),
    ("Good morning!", "Good morning! How can I help you today?"),
    ("Good afternoon!", "Good afternoon! How can I help you today?"),
    ("Good evening!", "Good evening! How can I help you today?"),
    ("Hi, how are you?", "I'm doing well, thank you! How can I help you today?"),
    ("Hello there.", "Hello! How can I help you today?"),
    ("Greetings!", "Greetings! How can I help you today?"),
    ("Hey!", "Hey! How can I help you today?"),
]
WHO_Q = [
    "Who are you?", "What are you?", "What is your name?", "What's your name?", "Tell me about yourself.",
    "Introduce yourself.", "Are you a chatbot?",
]
WHO_A = "I am MM-Rec, a small recurrent language model. How can I help you?"
THANKS = [("Thanks!", "You're welcome!"), ("Thank you.", "You're welcome!"), ("Great, thanks!", "You're welcome! Anything else?")]

WEATHER_Q = [
    "What's the weather in {c}?", "What is the weather like in {c}?", "How is the weather in {c} today?",
    "Tell me the weather in {c}.", "Weather in {c}?", "Is it raining in {c}?", "Can you check the weather in {c} for me?",
    "Do I need an umbrella in {c} today?",
]
WEATHER_A = ["It's currently {t}°C and {w} in {c}.", "Right now it is {t}°C and {w} in {c}."]
TIME_Q = ["What time is it in {c}?", "What's the local time in {c}?", "Tell me the time in {c}."]
TIME_A = "It is {h} in {c}."

# --------------------------------------------------------------------------- tools


def _fn(name: str, description: str, props: Dict[str, dict], required: List[str]) -> dict:
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": {"type": "object", "properties": props, "required": required}},
    }


S = {"type": "string"}
WEATHER_TOOL = _fn("get_weather", "Get the current weather in a city", {"city": S}, ["city"])
TIME_TOOL = _fn("get_time", "Get the current local time in a city", {"city": S}, ["city"])
OTHER_TOOLS = [
    TIME_TOOL,
    _fn("convert_currency", "Convert an amount between currencies", {"amount": {"type": "number"}, "from": S, "to": S}, ["amount", "from", "to"]),
    _fn("search_web", "Search the web", {"query": S}, ["query"]),
    _fn("get_stock_price", "Get the latest price of a stock", {"symbol": S}, ["symbol"]),
    _fn("send_email", "Send an email", {"to": S, "subject": S, "body": S}, ["to", "subject", "body"]),
    _fn("set_timer", "Start a countdown timer", {"minutes": {"type": "integer"}}, ["minutes"]),
    _fn("translate", "Translate text into another language", {"text": S, "language": S}, ["text", "language"]),
]

# --------------------------------------------------------------------------- held-out split


def is_heldout(key: tuple) -> bool:
    """Stable assignment of a combination key to the held-out side (1 in HELDOUT_MOD)."""
    return int(hashlib.md5(repr(key).encode()).hexdigest(), 16) % HELDOUT_MOD == 0


def pos_bucket(exchange_index: int) -> int:
    return min(exchange_index, 3)


class NoKey(Exception):
    """This context (system prompt, position) has no key on the requested side."""


@dataclass
class Ctx:
    """What an exchange generator may look at, and the split it must draw from."""

    rng: random.Random
    heldout: bool  # True: draw a held-out key; False: a training key
    system: int  # index into SYSTEM_PROMPTS
    tools: Optional[List[dict]]
    keys: List[tuple] = field(default_factory=list)  # keys of the exchanges generated so far
    pending_recall: Optional[Tuple[int, int, int, int]] = None  # (name, intro phrasing, recall phrasing, gap) after an intro

    def draw(self, make_key, sample, heldout: Optional[bool] = None, tries: int = 2000):
        """Resample until the key falls on the requested side of the split (default: the context's)."""
        side = self.heldout if heldout is None else heldout
        for _ in range(tries):
            args = sample()
            key = make_key(*args)
            if is_heldout(key) == side:
                self.keys.append(key)
                return args
        raise NoKey("could not draw a key on the requested side of the split")


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _asst(text: str) -> dict:
    return {"role": "assistant", "content": text}


def _call(name: str, args: dict, call_id: str) -> dict:
    fn = {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}
    return {"role": "assistant", "content": "", "tool_calls": [{"id": call_id, "type": "function", "function": fn}]}


def _tool(content: dict, call_id: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": json.dumps(content, ensure_ascii=False)}


# Each exchange generator returns (messages, expect): messages of one exchange,
# and what a held-out evaluation of its last assistant message expects.


def ex_capital(ctx: Ctx, pos: int):
    r = ctx.rng
    ci, qi = ctx.draw(lambda ci, qi: ("capital", ci, qi, ctx.system, pos_bucket(pos)), lambda: (r.randrange(len(COUNTRIES)), r.randrange(len(CAPITAL_Q))))
    x, c = COUNTRIES[ci]
    q = CAPITAL_Q[qi].format(x=x)
    a = r.choice(CAPITAL_A).format(x=x, c=c)
    a = a[0].upper() + a[1:]
    return [_user(q), _asst(a)], {"contains": c.split(",")[0]}


def ex_arithmetic(ctx: Ctx, pos: int):
    r = ctx.rng

    def sample():
        op = r.choice("+-")
        return op, r.randrange(10), r.randrange(10), r.randrange(len(ADD_Q))

    op, a, b, qi = ctx.draw(lambda op, a, b, qi: ("arithmetic", op, a, b, qi, ctx.system, pos_bucket(pos)), sample)
    res = a + b if op == "+" else a - b
    q = (ADD_Q if op == "+" else SUB_Q)[qi].format(a=a, b=b)
    return [_user(q), _asst(f"{a} {op} {b} = {res}.")], {"contains": f"= {res}."}


def ex_greeting(ctx: Ctx, pos: int):
    r = ctx.rng

    def sample():
        who = r.random() < 0.5
        return who, r.randrange(len(WHO_Q) if who else len(GREETINGS))

    who, i = ctx.draw(lambda who, i: ("greeting", who, i, ctx.system, pos_bucket(pos)), sample)
    if who:
        return [_user(WHO_Q[i]), _asst(WHO_A)], {"contains": "MM-Rec"}
    u, a = GREETINGS[i]
    return [_user(u), _asst(a)], {"contains": "How can I help"}


def ex_thanks(ctx: Ctx, pos: int):
    u, a = ctx.rng.choice(THANKS)
    return [_user(u), _asst(a)], None


def ex_weather(ctx: Ctx, pos: int, call_id: str, call_side: Optional[bool] = None, answer_side: Optional[bool] = None):
    """User asks for the weather; assistant calls get_weather; tool answers; assistant reports.
    Two keys: the call (city × phrasing × system × tool list × position) and the
    answer (city × temperature × condition); each can be put on either side of the split."""
    r = ctx.rng
    tools_id = tuple(t["function"]["name"] for t in ctx.tools)
    ci, qi = ctx.draw(
        lambda ci, qi: ("tool_call", ci, qi, ctx.system, tools_id, pos_bucket(pos)), lambda: (r.randrange(len(CITIES)), r.randrange(len(WEATHER_Q))), call_side
    )

    def sample_result():
        t = r.choice(TEMPERATURES)
        w = r.choice([c for c in CONDITIONS if c != "snowy" or t <= 2])
        return t, w

    c = CITIES[ci]
    t, w = ctx.draw(lambda t, w: ("tool_answer", c, t, w), sample_result, answer_side)
    msgs = [
        _user(WEATHER_Q[qi].format(c=c)),
        _call("get_weather", {"city": c}, call_id),
        _tool({"city": c, "temperature_c": t, "condition": w}, call_id),
        _asst(r.choice(WEATHER_A).format(t=t, w=w, c=c)),
    ]
    expect_call = {"tool_call": {"name": "get_weather", "arguments": {"city": c}}}
    expect_answer = {"contains": f"{t}°C and {w}"}
    return msgs, expect_call, expect_answer


def ex_time(ctx: Ctx, pos: int, call_id: str):
    """get_time, only when that tool is offered: teaches that a city question is not always get_weather."""
    r = ctx.rng
    c = r.choice(CITIES)
    h = f"{r.randrange(24):02d}:{r.randrange(60):02d}"
    return [
        _user(r.choice(TIME_Q).format(c=c)),
        _call("get_time", {"city": c}, call_id),
        _tool({"city": c, "time": h}, call_id),
        _asst(TIME_A.format(h=h, c=c)),
    ], None


# --------------------------------------------------------------------------- conversations


def _pick_tools(r: random.Random) -> List[dict]:
    others = r.sample(OTHER_TOOLS, r.randint(2, 3))
    tools = [WEATHER_TOOL] + others
    r.shuffle(tools)
    return tools


class ConversationBuilder:
    """Appends exchanges to one conversation, tracking the exchange index and tool-call ids."""

    def __init__(self, ctx: Ctx):
        self.ctx = ctx
        self.messages: List[dict] = []
        sp = SYSTEM_PROMPTS[ctx.system]
        if sp is not None:
            self.messages.append({"role": "system", "content": sp})
        self.pos = 0
        self.calls = 0

    def add(self, msgs: List[dict]) -> None:
        self.messages.extend(msgs)
        self.pos += 1

    def call_id(self) -> str:
        self.calls += 1
        return f"call_{self.calls}"

    def filler(self, allow_tools: bool = True) -> None:
        """One exchange from a non-recall family (what sits between a name and its recall)."""
        r = self.ctx.rng
        kinds = ["capital", "arithmetic", "greeting", "thanks"]
        weights = [0.35, 0.35, 0.2, 0.1]
        if allow_tools and self.ctx.tools is not None:
            kinds += ["weather", "time"]
            weights += [0.25, 0.08 if TIME_TOOL in self.ctx.tools else 0.0]
        kind = r.choices(kinds, weights)[0]
        if kind == "weather":
            self.add(ex_weather(self.ctx, self.pos, self.call_id())[0])
        elif kind == "time":
            self.add(ex_time(self.ctx, self.pos, self.call_id())[0])
        else:
            self.add({"capital": ex_capital, "arithmetic": ex_arithmetic, "greeting": ex_greeting, "thanks": ex_thanks}[kind](self.ctx, self.pos)[0])

    def record(self) -> dict:
        rec = {"messages": self.messages}
        if self.ctx.tools is not None:
            rec["tools"] = self.ctx.tools
        return rec


def _new_ctx(r: random.Random, heldout: bool, tools_p: float) -> Ctx:
    system = 0 if r.random() < 0.45 else r.randrange(1, len(SYSTEM_PROMPTS))
    tools = _pick_tools(r) if r.random() < tools_p else None
    return Ctx(rng=r, heldout=heldout, system=system, tools=tools)


def train_conversation(r: random.Random) -> Tuple[dict, List[tuple]]:
    """One training conversation and the combination keys of its exchanges."""
    # Copying a name, a city or a temperature across turns is what a small recurrent
    # model learns slowest, so those conversations get most of the budget.
    kind = r.choices(["name", "weather", "mixed", "unknown_name"], [0.42, 0.33, 0.22, 0.03])[0]
    ctx = _new_ctx(r, heldout=False, tools_p=1.0 if kind == "weather" else TOOLS_P)
    b = ConversationBuilder(ctx)
    if kind == "name":
        for _ in range(r.choice([0, 0, 1])):
            b.filler()
        b.add(name_intro(ctx, b.pos))
        for _ in range(ctx.pending_recall[3]):
            b.filler()
        name_recall_turn(ctx, b)
        if r.random() < 0.35:  # asked again later: more recall signal per conversation
            k = r.choice([0, 1, 2])
            for _ in range(k):
                b.filler()
            name_recall_again(ctx, b, ctx.pending_recall[3] + 1 + k)
        for _ in range(r.choice([0, 0, 1])):
            b.filler()
    elif kind == "weather":
        for _ in range(r.choice([0, 0, 1, 2])):
            b.filler(allow_tools=False)
        b.add(ex_weather(ctx, b.pos, b.call_id())[0])
        if r.random() < 0.35:  # a second city: the call must use the latest one
            for _ in range(r.choice([0, 1])):
                b.filler(allow_tools=False)
            b.add(ex_weather(ctx, b.pos, b.call_id())[0])
        for _ in range(r.choice([0, 0, 1])):
            b.filler()
    elif kind == "mixed":
        for _ in range(r.randint(1, 5)):
            b.filler()
    else:  # asked for a name that was never given
        for _ in range(r.randint(0, 2)):
            b.filler()
        b.add([_user(r.choice(RECALL_Q)), _asst(RECALL_UNKNOWN_A)])
    return b.record(), ctx.keys


# The intro and the recall form one key (name × intro phrasing × recall phrasing × gap),
# drawn when the intro is generated; the recall exchange then uses it.


def name_intro(ctx: Ctx, pos: int, gap: Optional[int] = None):
    r = ctx.rng

    def sample():
        return r.randrange(len(NAMES)), r.randrange(len(INTRO_Q)), r.randrange(len(RECALL_Q)), gap if gap is not None else r.randint(0, 4)

    ni, ii, qi, g = ctx.draw(lambda ni, ii, qi, g: ("name_recall", ni, ii, qi, g), sample)
    n = NAMES[ni]
    ctx.pending_recall = (ni, ii, qi, g)
    return [_user(INTRO_Q[ii].format(n=n)), _asst(r.choice(INTRO_A).format(n=n))]


def name_recall_turn(ctx: Ctx, b: ConversationBuilder) -> dict:
    ni, _, qi, _ = ctx.pending_recall
    b.add([_user(RECALL_Q[qi]), _asst(RECALL_A.format(n=NAMES[ni]))])
    return {"contains": NAMES[ni]}


def name_recall_again(ctx: Ctx, b: ConversationBuilder, gap: int) -> None:
    """A second question for the same name, `gap` exchanges after the introduction;
    its phrasing is drawn so that this combination is also a training key."""
    ni, ii, _, _ = ctx.pending_recall
    try:
        (qi,) = ctx.draw(lambda qi: ("name_recall", ni, ii, qi, gap), lambda: (ctx.rng.randrange(len(RECALL_Q)),), tries=50)
    except NoKey:
        return
    b.add([_user(RECALL_Q[qi]), _asst(RECALL_A.format(n=NAMES[ni]))])


# --------------------------------------------------------------------------- held-out items


def heldout_item(r: random.Random, family: str) -> dict:
    """One evaluation prompt whose target exchange has a held-out key; the
    context before it (system prompt, tools, earlier exchanges) is drawn as in training."""
    while True:
        try:
            return _heldout_item(r, family)
        except NoKey:
            continue  # e.g. no held-out greeting for this system prompt and position: new context


def _heldout_item(r: random.Random, family: str) -> dict:
    tools_p = 1.0 if family in ("tool_call", "tool_answer") else TOOLS_P
    ctx = _new_ctx(r, heldout=False, tools_p=tools_p)
    b = ConversationBuilder(ctx)
    if family == "name_recall":
        for _ in range(r.choice([0, 0, 1])):
            b.filler()
        gap = r.randint(1, 4)
        ctx.heldout = True
        b.add(name_intro(ctx, b.pos, gap=gap))
        ctx.heldout = False
        for _ in range(gap):
            b.filler()
        prompt_len = len(b.messages) + 1
        expect = name_recall_turn(ctx, b)
        return _item(family, b, prompt_len, expect)
    for _ in range(r.randint(0, 3)):
        b.filler(allow_tools=family not in ("tool_call", "tool_answer"))
    if family in ("tool_call", "tool_answer"):
        # Only the part under test is drawn from the held-out side.
        held_call = family == "tool_call"
        msgs, e_call, e_answer = ex_weather(ctx, b.pos, b.call_id(), call_side=held_call, answer_side=not held_call)
        b.add(msgs)
        if family == "tool_call":
            return _item(family, b, len(b.messages) - 3, e_call)
        return _item(family, b, len(b.messages) - 1, e_answer)
    ctx.heldout = True
    gen = {"capital": ex_capital, "arithmetic": ex_arithmetic, "greeting": ex_greeting}[family]
    msgs, expect = gen(ctx, b.pos)
    b.add(msgs)
    return _item(family, b, len(b.messages) - 1, expect)


def _item(family: str, b: ConversationBuilder, prompt_len: int, expect: dict) -> dict:
    it = {"family": family, "messages": b.messages[:prompt_len], "expect": expect}
    if b.ctx.tools is not None:
        it["tools"] = b.ctx.tools
    it["_heldout_keys"] = [k for k in b.ctx.keys if is_heldout(k)]
    return it


FAMILIES = ["capital", "arithmetic", "name_recall", "tool_call", "tool_answer", "greeting"]


# --------------------------------------------------------------------------- verification and CLI


def _prompt_hash(tools: Optional[list], messages: List[dict]) -> str:
    return hashlib.md5((json.dumps(tools, sort_keys=True) + json.dumps(messages, sort_keys=True)).encode()).hexdigest()


def _prefix_hashes(rec: dict) -> Iterable[str]:
    """Hash of every prompt a conversation contains (through each user or tool message)."""
    msgs = rec["messages"]
    for i, m in enumerate(msgs):
        if m["role"] in ("user", "tool"):
            yield _prompt_hash(rec.get("tools"), msgs[: i + 1])


def verify_heldout(train: List[dict], train_keys: set, items: List[dict]) -> dict:
    """Raise if any held-out item's key or exact prompt occurs in training."""
    prefixes = set()
    for rec in train:
        prefixes.update(_prefix_hashes(rec))
    for it in items:
        for k in it["_heldout_keys"]:
            if k in train_keys:
                raise AssertionError(f"held-out key {k} occurs in training")
        if _prompt_hash(it.get("tools"), it["messages"]) in prefixes:
            raise AssertionError(f"held-out prompt occurs in training: {it['messages']}")
    return {"train_prompts": len(prefixes), "train_keys": len(train_keys), "heldout_items": len(items)}


def generate(n_train: int, n_per_family: int, seed: int) -> Tuple[List[dict], List[dict], dict]:
    r = random.Random(seed)
    train, train_keys = [], set()
    for _ in range(n_train):
        rec, keys = train_conversation(r)
        train.append(rec)
        train_keys.update(keys)
    er = random.Random(seed + 1_000_003)
    items, seen = [], set()
    for fam in FAMILIES:
        n = 0
        while n < n_per_family:  # distinct prompts only
            it = heldout_item(er, fam)
            h = _prompt_hash(it.get("tools"), it["messages"])
            if h in seen:
                continue
            seen.add(h)
            items.append(it)
            n += 1
    stats = verify_heldout(train, train_keys, items)
    return train, items, stats


def main() -> None:
    ap = argparse.ArgumentParser(description="Generate the synthetic training corpus and the held-out evaluation split.")
    ap.add_argument("--out", required=True, help="directory for train.jsonl and heldout.jsonl")
    ap.add_argument("--conversations", type=int, default=120000)
    ap.add_argument("--heldout-per-family", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    train, items, stats = generate(a.conversations, a.heldout_per_family, a.seed)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "train.jsonl"), "w") as f:
        for rec in train:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "heldout.jsonl"), "w") as f:
        for it in items:
            it = {k: v for k, v in it.items() if not k.startswith("_")}
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "corpus-stats.json"), "w") as f:
        json.dump({"seed": a.seed, "train_conversations": len(train), "heldout_per_family": a.heldout_per_family, **stats}, f, indent=2)
    print(
        f"corpus: {len(train)} training conversations, {len(items)} held-out items "
        f"({a.heldout_per_family} per family); verified: no held-out key among {stats['train_keys']} training keys, "
        f"no held-out prompt among {stats['train_prompts']} training prompts"
    )


if __name__ == "__main__":
    main()
