"""Bibliography style for the snnedu book: the reference list is labelled "Author et al., Year".

sphinxcontrib-bibtex's author-year citations ({cite:p}`key` -> [Fang et al., 2021]) otherwise sit
next to a reference list numbered [1], [2], ...; this style gives the list the same labels, so a
reader finds a cited work by what the citation says. Entries are sorted by author, year, title.

Selected in _config.yml with ``bibtex_default_style: snnedu`` (loaded via sphinx.local_extensions).
"""
from collections import Counter
from string import ascii_lowercase

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    # rich last name, without LaTeX braces: "{2ephyrus}" -> "2ephyrus"
    return " ".join(person.prelast_names + person.last_names).replace("{", "").replace("}", "")


def _author_year(entry) -> str:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    if not people:
        who = entry.fields.get("title", entry.key).replace("{", "").replace("}", "")
    elif len(people) == 1:
        who = _surname(people[0])
    elif len(people) == 2:
        who = f"{_surname(people[0])} and {_surname(people[1])}"
    else:
        who = f"{_surname(people[0])} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels like "Fang et al., 2021"; equal labels get a, b, ... after the year."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [_author_year(e) for e in entries]
        total, seen = Counter(labels), Counter()
        for label in labels:
            if total[label] > 1:
                yield label + ascii_lowercase[seen[label]]
                seen[label] += 1
            else:
                yield label


class SnneduStyle(PlainStyle):
    default_label_style = AuthorYearLabelStyle


def setup(app):
    register_plugin("pybtex.style.labels", "snnedu_author_year", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "snnedu", SnneduStyle)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
