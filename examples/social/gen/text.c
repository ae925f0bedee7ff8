/*
 * text.c -- the social example's text (text.h): an output buffer with JSON escaping, and
 * posts, comments and bios made of built-in word lists. Everyday words are drawn with a
 * Zipf-like skew (the first of the list the most often), as in real text.
 */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the buffer ---------------------------------------------------------------------- */

static void
reserve(sg_buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		fputs("out of memory\n", stderr);
		exit(1);
	}
	b->p = p;
	b->cap = cap;
}

void
sg_buf_put(sg_buf *b, const char *s, size_t n)
{
	reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void
sg_buf_puts(sg_buf *b, const char *s)
{
	sg_buf_put(b, s, strlen(s));
}

void
sg_buf_putc(sg_buf *b, char c)
{
	reserve(b, 1);
	b->p[b->len++] = c;
}

void
sg_buf_printf(sg_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sg_buf_put(b, small, (size_t)n);
		return;
	}
	reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
sg_buf_u64(sg_buf *b, uint64_t v)
{
	char t[24];
	int i = sizeof(t);
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sg_buf_put(b, t + i, sizeof(t) - (size_t)i);
}

void
sg_buf_json(sg_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	sg_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			sg_buf_putc(b, '\\');
			sg_buf_putc(b, (char)*p);
		} else if (*p == '\n') {
			sg_buf_put(b, "\\n", 2);
		} else if (*p < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
			sg_buf_put(b, e, 6);
		} else {
			sg_buf_putc(b, (char)*p);
		}
	}
	sg_buf_putc(b, '"');
}

const char *
sg_buf_str(sg_buf *b)
{
	reserve(b, 0);
	b->p[b->len] = '\0';
	return b->p;
}

void
sg_buf_free(sg_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- word lists ---------------------------------------------------------------------- */

#define TOPIC_WORDS 10

typedef struct topic {
	const char *name;
	const char *emoji;
	const char *words[TOPIC_WORDS];
} topic;

static const topic topics[] = {
	{"coffee",
	 "☕",
	 {"espresso", "latte", "roast", "beans", "barista", "cappuccino", "grinder", "pourover",
	  "caffeine", "mug"}},
	{"running",
	 "🏃",
	 {"marathon", "pace", "sneakers", "trail", "intervals", "tempo", "splits", "race", "finish",
	  "miles"}},
	{"databases",
	 "🗄️",
	 {"database", "postgres", "sqlite", "index", "query", "replication", "fsync", "latency",
	  "schema", "kafka"}},
	{"rustlang",
	 "🦀",
	 {"rust", "borrow", "compiler", "cargo", "crate", "lifetime", "async", "trait", "unsafe",
	  "clippy"}},
	{"jazz",
	 "🎷",
	 {"saxophone", "trumpet", "improvisation", "coltrane", "bebop", "vinyl", "quartet", "swing",
	  "blues", "standards"}},
	{"gardening",
	 "🌱",
	 {"tomatoes", "compost", "seedlings", "basil", "greenhouse", "mulch", "pruning", "harvest",
	  "soil", "allotment"}},
	{"football",
	 "⚽",
	 {"goal", "striker", "derby", "penalty", "keeper", "league", "transfer", "offside",
	  "midfield", "kickoff"}},
	{"astronomy",
	 "🔭",
	 {"telescope", "nebula", "jupiter", "eclipse", "galaxy", "comet", "orbit", "meteor",
	  "saturn", "aurora"}},
	{"cooking",
	 "🍳",
	 {"recipe", "risotto", "garlic", "simmer", "dumplings", "curry", "pasta", "spices", "broth",
	  "skillet"}},
	{"climate",
	 "🌍",
	 {"emissions", "solar", "heatwave", "carbon", "renewable", "drought", "turbines", "glacier",
	  "flooding", "batteries"}},
	{"photography",
	 "📷",
	 {"lens", "aperture", "shutter", "portrait", "film", "sunset", "tripod", "exposure",
	  "bokeh", "darkroom"}},
	{"cycling",
	 "🚴",
	 {"bike", "peloton", "gravel", "climb", "saddle", "commute", "cadence", "chain", "sprint",
	  "velodrome"}},
	{"gaming",
	 "🎮",
	 {"speedrun", "controller", "quest", "boss", "indie", "pixel", "multiplayer", "console",
	  "roguelike", "patch"}},
	{"books",
	 "📚",
	 {"novel", "chapter", "library", "poetry", "paperback", "author", "bookclub", "fiction",
	  "memoir", "sequel"}},
	{"travel",
	 "✈️",
	 {"airport", "passport", "train", "hostel", "itinerary", "layover", "backpack", "museum",
	  "ferry", "roadtrip"}},
	{"music",
	 "🎸",
	 {"album", "concert", "guitar", "playlist", "chorus", "drummer", "festival", "setlist",
	  "synth", "encore"}},
	{"science",
	 "🔬",
	 {"experiment", "hypothesis", "microscope", "enzyme", "physics", "quantum", "neuron",
	  "vaccine", "genome", "particle"}},
	{"machinelearning",
	 "🤖",
	 {"model", "training", "dataset", "gpu", "inference", "transformer", "benchmark", "tokens",
	  "embeddings", "finetuning"}},
	{"startups",
	 "🚀",
	 {"founders", "funding", "pitch", "launch", "customers", "runway", "product", "hiring",
	  "investors", "pivot"}},
	{"cats",
	 "🐈",
	 {"kitten", "purr", "whiskers", "catnip", "meow", "litter", "tabby", "nap", "zoomies",
	  "scratching"}},
	{"dogs",
	 "🐕",
	 {"puppy", "leash", "fetch", "walkies", "retriever", "bark", "treats", "paws", "kennel",
	  "corgi"}},
	{"chess",
	 "♟️",
	 {"opening", "gambit", "endgame", "checkmate", "rook", "bishop", "blitz", "tournament",
	  "sicilian", "grandmaster"}},
	{"baking",
	 "🥐",
	 {"croissant", "butter", "flour", "dough", "pastry", "cinnamon", "sourdough", "bread",
	  "proofing", "ganache"}},
	{"hiking",
	 "🥾",
	 {"summit", "trailhead", "ridge", "boots", "campsite", "forest", "alpine", "switchbacks",
	  "waterfall", "canyon"}},
	{"film",
	 "🎬",
	 {"cinema", "director", "screenplay", "trailer", "premiere", "actor", "documentary",
	  "cinematography", "festival", "remake"}},
	{"tea",
	 "🍵",
	 {"matcha", "oolong", "kettle", "teapot", "sencha", "chai", "steep", "earlgrey", "rooibos",
	  "teacup"}},
	{"linux",
	 "🐧",
	 {"kernel", "terminal", "shell", "distro", "vim", "systemd", "package", "bash", "emacs",
	  "dotfiles"}},
	{"design",
	 "🎨",
	 {"typography", "font", "layout", "sketch", "palette", "figma", "grid", "kerning",
	  "wireframe", "accessibility"}},
	{"elections",
	 "🗳️",
	 {"ballot", "candidate", "debate", "polls", "turnout", "campaign", "vote", "senate",
	  "referendum", "manifesto"}},
	{"markets",
	 "📈",
	 {"stocks", "inflation", "rates", "bonds", "earnings", "crypto", "bitcoin", "dividend",
	  "recession", "index"}},
	{"kappa",
	 "🪵",
	 {"eventsourcing", "projection", "append", "stream", "replay", "log", "idempotent",
	  "snapshot", "cqrs", "timeline"}},
	{"parenting",
	 "🍼",
	 {"toddler", "bedtime", "daycare", "homework", "diapers", "lullaby", "playground",
	  "tantrum", "naptime", "schoolrun"}},
};

#define N_TOPICS (sizeof(topics) / sizeof(topics[0]))

/* Sentence templates: {T} a word of the topic, {A} an adjective, {V} a verb in the past,
 * {N} a kind of post, {D} a time, {W} an everyday thing. */
static const char *const templates[] = {
	"Just {V} my first {T} and honestly it was {A}.",
	"Anyone else think {T} is {A} this {D}?",
	"The {T} at the place down the street is {A}.",
	"Spent the whole {D} on {T} and {T}.",
	"New {N} is up: {T}, {T} and a bit of {T}.",
	"Can't stop thinking about {T}.",
	"{T} is {A} and {T} is {A}.",
	"If you like {T}, you will love {T}.",
	"Three things I learned about {T} this {D}: {T}, {T} and patience.",
	"Our {T} meetup is this {D}. Who's coming?",
	"Finally tried {T} with {T}. So {A}!",
	"Plans for the {D}: {T}, {T}, sleep.",
	"Is it just me or is {T} getting more {A}?",
	"Reading about {T} again. The part about {T} blew my mind.",
	"My {T} {N}: {A} but worth it.",
	"Do not underestimate {T}.",
	"{T} over {T}, every single time.",
	"Looking for recommendations on {T}, any {N} welcome.",
	"{W} and {T} on a {A} {D}.",
	"Someone explain {T} to me like I'm five.",
	"I {V} the {T} and the {W} at the same time. Never again.",
	"Wrote a long {N} about {T} and why {T} matters.",
	"Ten years of {T} and I still get {A} about {T}.",
	"Unpopular opinion: {T} is overrated, {T} is not.",
	"The {W} was {A}, the {T} even more so.",
	"Quick {N}: how I {V} {T} in an afternoon.",
	"Good {D} everyone. Today's agenda: {T}.",
	"Who else is {A} about {T} right now?",
};

static const char *const adjectives[] = {
	"amazing", "terrible",	 "weird", "underrated", "overrated", "wonderful", "exhausting",
	"great",   "surprising", "fun",	  "hard",	"easy",	     "beautiful", "chaotic",
	"perfect", "strange",	 "cozy",  "brilliant",	"messy",     "excited",	  "nervous",
};

static const char *const past_verbs[] = {
	"tried", "finished", "started", "built",  "fixed",  "broke",  "found", "watched",
	"read",	 "booked",   "ordered", "cooked", "tested", "shared", "lost",  "won",
};

static const char *const post_kinds[] = {
	"thread", "blog post", "video", "photo", "podcast episode", "review", "guide", "newsletter",
};

static const char *const times[] = {
	"morning", "evening", "weekend", "week",      "month",	 "night",
	"Monday",  "Friday",  "summer",	 "lunchtime", "holiday", "afternoon",
};

static const char *const things[] = {
	"coffee",  "rain",  "traffic", "sunshine", "deadline", "snow",	 "lunch",  "train",
	"meeting", "phone", "laptop",  "playlist", "weather",  "office", "dinner", "walk",
};

static const char *const common[] = {
	"weekend", "morning", "friends", "team",    "advice", "update", "news",	   "idea",
	"plan",	   "story",   "lesson",	 "project", "photo",  "video",	"podcast", "thread",
};

#define N_TEMPLATES (sizeof(templates) / sizeof(templates[0]))
#define N_COMMON (sizeof(common) / sizeof(common[0]))
#define PICK(r, list) (list)[sg_rng_below((r), sizeof(list) / sizeof((list)[0]))]

static const char *const openers[] = {
	"Hot take:", "PSA:",	     "Quick thought:", "Update:",
	"Reminder:", "Thread 🧵:", "TIL:",	       "Confession:",
};

#define N_OPENERS (sizeof(openers) / sizeof(openers[0]))

static const char *const reactions[] = {
	"So true!",
	"Couldn't agree more.",
	"This is great.",
	"Thanks for sharing!",
	"Wait, really?",
	"lol",
	"Same here.",
	"I have questions.",
	"Strong disagree, respectfully.",
	"Love this.",
	"Saving this for later.",
	"Underrated take.",
	"100%",
	"This made my day 😂",
	"Any tips for a beginner?",
	"Where was this taken?",
	"Bookmarked.",
	"Tell me more!",
};

#define N_REACTIONS (sizeof(reactions) / sizeof(reactions[0]))

static const char *const roles[] = {
	"Software engineer", "Teacher",	   "Writer",	 "Nurse",	   "Designer",
	"Student",	     "Barista",	   "Researcher", "Photographer",   "Chef",
	"Product manager",   "Librarian",  "Musician",	 "Data scientist", "Parent of two",
	"Retired engineer",  "Journalist", "Founder",	 "Carpenter",	   "Doctor",
};

#define N_ROLES (sizeof(roles) / sizeof(roles[0]))

static const char *const taglines[] = {
	"Views my own.", "Probably outside.", "Coffee first.",	       "He/him.",
	"She/her.",	 "They/them.",	      "Opinions change.",      "Learning in public.",
	"Be kind.",	 "DMs open.",	      "Here for the threads.", "",
};

#define N_TAGLINES (sizeof(taglines) / sizeof(taglines[0]))

static const char *const agents[] = {
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
	"Chrome/131.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
	"Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
	"Gecko) Mobile/15E148",
	"Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
	"Chrome/131.0 Mobile Safari/537.36",
	"SocialApp/7.4 (iOS 18.1)",
	"SocialApp/7.4 (Android 15)",
	"curl/7.88.1",
};

#define N_AGENTS (sizeof(agents) / sizeof(agents[0]))

const char *
sg_topic_name(unsigned t)
{
	return topics[t % N_TOPICS].name;
}

unsigned
sg_user_topic(const sg_model *m, uint32_t k, int which)
{
	unsigned a = m->users[k].topics[0] % N_TOPICS, b = m->users[k].topics[1] % N_TOPICS;
	if (which && b == a)
		b = (a + 1) % N_TOPICS;
	return which ? b : a;
}

const char *
sg_user_agent(unsigned k)
{
	return agents[k % N_AGENTS];
}

static const char *
topic_word(sg_rng *r, unsigned t)
{
	double u = sg_rng_unit(r);
	return topics[t].words[(size_t)(TOPIC_WORDS * u * u)];
}

/* One sentence from a template, its {T} slots filled from topic t. */
static void
sentence(sg_buf *b, sg_rng *r, unsigned t, int opener)
{
	if (opener) {
		sg_buf_puts(b, openers[sg_rng_below(r, N_OPENERS)]);
		sg_buf_putc(b, ' ');
	}
	const char *p = templates[sg_rng_below(r, N_TEMPLATES)];
	int first = 1;
	while (*p) {
		const char *w = NULL;
		if (p[0] == '{' && p[1] && p[2] == '}') {
			switch (p[1]) {
			case 'T':
				w = topic_word(r, t);
				break;
			case 'A':
				w = PICK(r, adjectives);
				break;
			case 'V':
				w = PICK(r, past_verbs);
				break;
			case 'N':
				w = PICK(r, post_kinds);
				break;
			case 'D':
				w = PICK(r, times);
				break;
			default:
				w = PICK(r, things);
				break;
			}
			size_t at = b->len;
			sg_buf_puts(b, w);
			if (first && opener == 0 && b->p[at] >= 'a' && b->p[at] <= 'z')
				b->p[at] = (char)(b->p[at] - 'a' + 'A');
			p += 3;
		} else {
			sg_buf_putc(b, *p++);
		}
		first = 0;
	}
}

void
sg_text_post(sg_buf *b, sg_rng *r, const sg_model *m, uint32_t author)
{
	unsigned t = sg_rng_chance(r, 0.8) ? sg_user_topic(m, author, sg_rng_chance(r, 0.35))
					   : sg_rng_below(r, N_TOPICS);
	uint32_t sentences = 1 + sg_rng_below(r, 3);
	for (uint32_t s = 0; s < sentences; s++) {
		if (s)
			sg_buf_putc(b, ' ');
		sentence(b, r, t, s == 0 && sg_rng_chance(r, 0.15));
	}
	const sg_user *u = &m->users[author];
	if (u->followees && sg_rng_chance(r, 0.1)) {
		char name[SG_NAME_MAX];
		uint32_t v = m->fe[m->fe_off[author] + sg_rng_below(r, u->followees)];
		sg_user_username(m, v, name);
		sg_buf_printf(b, " cc @%s", name);
	}
	if (sg_rng_chance(r, 0.3))
		sg_buf_printf(b, " #%s", topics[t].name);
	if (sg_rng_chance(r, 0.15))
		sg_buf_printf(b, " %s", topics[t].emoji);
}

void
sg_text_comment(sg_buf *b, sg_rng *r, const sg_model *m, uint32_t author, uint32_t post_author)
{
	(void)author;
	unsigned t = sg_user_topic(m, post_author, sg_rng_chance(r, 0.3));
	if (sg_rng_chance(r, 0.6)) {
		sg_buf_puts(b, reactions[sg_rng_below(r, N_REACTIONS)]);
		if (sg_rng_chance(r, 0.4))
			sg_buf_printf(b, " The %s part especially.", topic_word(r, t));
	} else {
		sentence(b, r, t, 0);
	}
}

void
sg_text_bio(sg_buf *b, sg_rng *r, const sg_model *m, uint32_t k)
{
	unsigned t0 = sg_user_topic(m, k, 0), t1 = sg_user_topic(m, k, 1);
	const char *tag = taglines[sg_rng_below(r, N_TAGLINES)];
	sg_buf_printf(b, "%s. Into %s, %s and %s %s.%s%s", roles[sg_rng_below(r, N_ROLES)],
		      topics[t0].name, topic_word(r, t0), topic_word(r, t1), topics[t1].emoji,
		      *tag ? " " : "", tag);
}

const char *
sg_text_search_term(sg_rng *r)
{
	if (sg_rng_chance(r, 0.15))
		return common[sg_rng_below(r, N_COMMON)];
	unsigned t = sg_rng_below(r, N_TOPICS);
	return sg_rng_chance(r, 0.2) ? topics[t].name : topic_word(r, t);
}
