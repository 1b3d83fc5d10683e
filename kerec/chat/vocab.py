"""The fixed word lists the parser uses (all in :func:`~kerec.chat.catalogue.normalise`'d form: lower case,
apostrophes removed). Changing a list changes behaviour deterministically; tests pin the main ones."""
from __future__ import annotations

import re

# ---- cues before a mentioned title: the nearest one in the clause decides what the mention means
DISLIKE_CUES = ("didnt like", "did not like", "dont like", "do not like", "didnt enjoy", "did not enjoy",
                "nothing like", "not like", "hated", "hate", "hates", "disliked", "dislike", "cant stand",
                "cannot stand", "can not stand", "couldnt stand", "not a fan of", "wasnt a fan of", "not into",
                "bored by", "boring", "awful", "terrible")
EXCLUDE_CUES = ("already seen", "already watched", "have seen", "ive seen", "seen", "watched", "saw", "not", "no",
                "except", "besides", "other than", "apart from", "without", "instead of", "skip", "exclude",
                "excluding", "never")
LIKE_CUES = ("like", "liked", "likes", "love", "loved", "loves", "enjoyed", "enjoy", "adore", "adored",
             "fan of", "similar to", "such as", "as good as", "in the vein of", "reminds me of", "favourite",
             "favorite", "great", "recommend", "want")
# ---- after a title, in the same clause: "Fargo, which I loved" / "Fargo was awful"
AFTER_LIKE = re.compile(r"\b(?:loved|liked|enjoyed|adored) (?:it|that|that one)\b|\b(?:was|is) (?:great|good|"
                        r"brilliant|amazing|excellent|fun|wonderful|fantastic)\b")
AFTER_DISLIKE = re.compile(r"\b(?:hated|disliked|didnt like|did not like) (?:it|that|that one)\b|\b(?:was|is) "
                           r"(?:bad|awful|terrible|boring|dull|horrible|too \w+)\b")

# Words after which a phrase is read as a title for fuzzy matching ("like fargo", "loved toy stroy").
FUZZY_TRIGGERS = frozenset({"like", "liked", "love", "loved", "enjoyed", "adore", "adored", "seen", "watched",
                            "saw", "hated", "disliked", "than", "except", "besides", "about"})
TRIGGER_PAIRS = frozenset({("similar", "to"), ("fan", "of"), ("such", "as"), ("vein", "of"), ("reminds", "of")})
# A phrase starting with one of these is a request, not a title ("like something funny").
NOT_TITLE = frozenset({"something", "anything", "movies", "movie", "films", "film", "to", "it", "that", "this",
                       "them", "those", "these", "more", "one", "ones", "some", "any", "i", "you", "me", "my",
                       "your", "we", "what", "which", "how", "all", "very", "much", "stuff", "things", "genre",
                       "genres", "be", "have", "see", "watch", "maybe", "so", "too", "less", "other", "others",
                       "from", "in", "before", "after", "since", "the", "a", "an", "and", "or", "but", "with",
                       "if", "its", "is", "was", "really", "please", "lot", "lots", "kind", "sort", "type", "im", "id",
                       "ive", "ill", "youre", "theyre", "were", "dont", "cant"})
CONNECTORS = frozenset({"and", "or", "nor", "plus", "also", "as", "well", "the", "a", "an"})
FOLLOWERS = frozenset({"was", "is", "were", "and", "or", "but", "which", "that", "type", "style", "kind",
                       "again", "too"})  # a capitalised sentence-initial one-word title counts before these

# ---- genres: the nearest cue before a genre word in its clause decides in (hard) or out (hard)
GENRE_OUT_CUES = ("no", "not", "nothing", "none", "without", "except", "avoid", "hate", "hated", "dont like",
                  "do not like", "dont want", "do not want", "dislike", "anything but", "other than", "too",
                  "less", "never", "skip", "exclude", "excluding", "cant stand", "cannot stand", "not into",
                  "instead of", "fewer", "rather than", "sick of", "tired of", "enough")
GENRE_IN_CUES = ("want", "like", "love", "prefer", "enjoy", "looking for", "mood for", "only", "something", "some",
                 "rather", "maybe", "how about", "more", "but", "its", "it is", "is", "also", "and")

# Canonical genre (lower case) → extra words naming it; each genre is also known by its own name (+ plural).
GENRE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sci-fi": ("sci fi", "scifi", "science fiction", "sci fis"), "film-noir": ("film noir", "noir", "noirs"),
    "children's": ("childrens", "childrens movie", "kids movie", "kids movies", "kids film", "family movie",
                   "family film", "family films", "family movies"),
    "animation": ("animated", "anime", "cartoon", "cartoons"), "documentary": ("documentaries", "docs", "doc"),
    "comedy": ("comedies", "romcom", "romcoms"), "romance": ("romances", "romcom", "romcoms", "love story",
                                                             "love stories"),
    "mystery": ("mysteries", "whodunit", "whodunnit", "detective"), "crime": ("gangster", "heist", "mafia"),
    "war": ("war movie", "war movies", "war film", "war films"), "fantasy": ("fantasies",),
}

# Soft preferences: adjective (regex over the normalised clause) → genre weights (lower-case canonical names).
SOFT_GENRES: tuple[tuple[str, dict[str, float]], ...] = (
    (r"light|lighter|light hearted|lighthearted|feel good|cheerful|uplifting|happy|happier|upbeat|fun",
     {"comedy": 1.0, "animation": 0.5, "children's": 0.5, "musical": 0.5, "horror": -1.0, "war": -1.0,
      "film-noir": -0.5, "thriller": -0.5, "crime": -0.5}),
    (r"dark|darker|gritty|grittier|bleak|grim",
     {"film-noir": 1.0, "crime": 1.0, "thriller": 0.5, "drama": 0.5, "comedy": -0.5, "children's": -1.0,
      "animation": -1.0}),
    (r"funny|funnier|hilarious|humorous|laugh|laughs|witty|silly", {"comedy": 1.0}),
    (r"scary|scarier|creepy|spooky|frightening|terrifying|chilling", {"horror": 1.0, "thriller": 0.5}),
    (r"romantic|sweet|heartwarming", {"romance": 1.0}),
    (r"exciting|thrilling|fast paced|action packed|intense|suspenseful", {"action": 1.0, "thriller": 0.5,
                                                                         "adventure": 0.5}),
    (r"serious|thought provoking|moving|emotional|sad|touching|deep", {"drama": 1.0}),
    (r"epic", {"adventure": 0.5, "war": 0.5}),
    (r"mysterious|puzzling|twisty", {"mystery": 1.0}),
)
SOFT_OLDER = r"older|old|classic|classics|vintage|black and white"
SOFT_NEWER = r"newer|recent|more recent|modern|latest|contemporary"

MORE = re.compile(r"\b(?:something|anything) (?:else|different)\b|\bother (?:ones|films|movies|suggestions|picks)\b"
                  r"|\b(?:none|not any) of (?:those|these|them)\b|\bnot (?:those|these|them)\b|\bshow me more\b"
                  r"|^\s*more\s*[.!]?\s*$|\bmore (?:please|suggestions|options|ideas|picks)\b|\bwhat else\b"
                  r"|\banother (?:one|suggestion)\b|\bseen (?:those|these|them) (?:all|already)\b")
RESET = re.compile(r"^\s*/?(?:reset|start over|start again|new search|forget (?:it|everything|all that))\s*[.!]?\s*$")
