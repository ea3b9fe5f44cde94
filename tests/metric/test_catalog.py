import pytest
import yaml

from bot.errors import ConfigError
from bot.metric.catalog import CATALOG_PATH, Sensitivity, load_catalog

SHIPPED = [
    "dau",
    "wau",
    "mau",
    "dau_mau",
    "searches",
    "active_instances",
    "instances_by_deployment",
    "cody_pro_active",
    "cody_pro_new",
    "cody_pro_canceled",
    "mrr",
    "arr",
    # the handbook's requests (DOMAIN.md)
    "monthly_users",
    "users_by_instance_type",
    "seat_consumption",
    "user_accounts",
    "customers_on_latest",
    "version",
    "hosting_type",
    "telemetry_status",
    "code_hosts",
    "repos",
    "cody_users",
]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_shipped_catalog_has_the_promised_metrics(catalog):
    names = [m.name for m in catalog.metrics]
    assert set(SHIPPED) <= set(names)
    for metric in catalog.metrics:
        assert metric.description and metric.owner and metric.dashboard.startswith("https://")


def test_revenue_metrics_are_marked_sensitive(catalog):
    assert catalog.get("mrr").sensitivity is Sensitivity.REVENUE
    assert catalog.get("arr").sensitivity is Sensitivity.REVENUE
    assert catalog.get("dau").sensitivity is Sensitivity.PUBLIC


def test_cody_metrics_share_the_one_cody_pro_definition(catalog):
    for name in ("cody_pro", "cody_pro_active", "cody_pro_new", "cody_pro_canceled", "mrr", "arr"):
        metric = catalog.get(name)
        assert metric.sql_file == "cody_pro_daily.sql"
        # The price comes from settings.cody_price_usd, as in the daily post: no copy here.
        assert "price_usd" not in metric.params


def test_names_and_aliases_are_case_insensitive(catalog):
    assert catalog.get("DAU").name == "dau"
    assert catalog.get("Monthly Active Users").name == "mau"
    assert catalog.get("cody-pro-active").name == "cody_pro_active"
    metric, rest = catalog.match_prefix("daily active users 7d")
    assert (metric.name, rest) == ("dau", "7d")


def test_suggestions_for_misspelled_names(catalog):
    assert catalog.suggest("dua")[0] == "dau"
    assert "searches" in catalog.suggest("serches")
    assert catalog.suggest("qwertyuiop") == []


def _write(tmp_path, mutate):
    raw = yaml.safe_load(CATALOG_PATH.read_text())
    mutate(raw)
    path = tmp_path / "metrics.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _first(raw, name):
    return next(m for m in raw["metrics"] if m["name"] == name)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda r: _first(r, "dau").update(sql="SELECT @nope"), ["dau", "nope"]),
        (lambda r: _first(r, "dau").update(source="nowhere"), ["dau", "nowhere"]),
        (lambda r: _first(r, "wau").update(aliases=["DAU"]), ["DAU"]),
        (lambda r: _first(r, "dau").update(sql_file="cody_pro_daily.sql"), ["dau", "sql"]),
        (lambda r: _first(r, "dau").update(account_filter=False), ["dau", "account"]),
        (lambda r: _first(r, "dau").update(unit="parsecs"), ["unit"]),
        (lambda r: _first(r, "mrr").update(sensitivity="secret"), ["sensitivity"]),
        (lambda r: _first(r, "dau").update(dashboard="http://x"), ["dashboard"]),
        (lambda r: _first(r, "mau").pop("owner"), ["owner"]),
        (lambda r: _first(r, "dau").update(surprise=1), ["surprise"]),
        # The price is settings.cody_price_usd for every Cody Pro number: no local copy.
        (lambda r: _first(r, "mrr").update(params={"price_usd": 9.0}), ["mrr", "price_usd"]),
    ],
)
def test_invalid_catalog_is_refused_with_a_pointed_message(tmp_path, mutate, words):
    with pytest.raises(ConfigError) as err:
        load_catalog(_write(tmp_path, mutate))
    for word in words:
        assert word in err.value.user_message


def test_unreadable_catalog_is_a_config_error(tmp_path):
    path = tmp_path / "metrics.yml"
    path.write_text("metrics: [unclosed")
    with pytest.raises(ConfigError):
        load_catalog(path)


def test_adding_a_metric_is_adding_an_entry(tmp_path):
    def add(raw):
        entry = dict(_first(raw, "searches"))
        entry.update(
            name="notebook_views",
            aliases=["notebooks"],
            label="Notebook views",
            sql=entry["sql"].replace("SearchSubmitted", "SearchNotebookPageViewed"),
        )
        raw["metrics"].append(entry)

    catalog = load_catalog(_write(tmp_path, add))
    assert catalog.get("NOTEBOOKS").name == "notebook_views"


# Partitioned tables and their partitioning column: every read of them must be bounded
# by the lookup's UTC bounds, so BigQuery scans only the partitions the period needs.
PARTITIONED = {
    "dotcom_events.events": "timestamp",
    "dotcom_events.cody": "timestamp",
    "sourcegraph_analytics.update_checks": "checked_at",
}


def test_every_read_of_a_partitioned_table_is_bounded_by_the_period(catalog):
    import sqlglot
    from sqlglot import exp

    texts = {m.name: m.query_text() for m in catalog.metrics}
    texts.update({f"source {k}": s.data_through_sql for k, s in catalog.sources.items()})
    checked = 0
    for name, sql in texts.items():
        tree = sqlglot.parse_one(sql, read="bigquery")
        for select in tree.find_all(exp.Select):
            source = select.args.get("from_") or select.args.get("from")
            if source is None or not isinstance(source.this, exp.Table):
                continue
            table = f"{source.this.db}.{source.this.name}"
            if table not in PARTITIONED:
                continue
            column = PARTITIONED[table]
            where = select.args.get("where")
            assert where is not None, f"{name}: reads {table} without WHERE"

            def bounds(kind, column=column, where=where):
                return [
                    c
                    for c in where.find_all(kind)
                    if c.this.name == column and "_ts" in c.expression.sql()
                ]

            lower, upper = bounds(exp.GTE), bounds(exp.LT)
            assert lower and upper, f"{name}: {table} not bounded on {column}"
            checked += 1
    assert checked >= 10


def test_readme_and_catalog_agree_on_every_metric_and_default_period(catalog):
    """The README's /metric table names every metric once, with the catalog's default."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## /metric") :]
    defaults = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2].startswith("`"):
            for name in re.findall(r"`([a-z_]+)`", cells[0]):
                defaults[name] = cells[2].strip("`")
    assert defaults == {m.name: m.default_period for m in catalog.metrics}


def test_every_description_names_the_table_it_counts(catalog):
    tables = ("dotcom_events.", "sourcegraph_analytics.", "update_checks", "salesforce_data.")
    for metric in catalog.metrics:
        if metric.source in ("ssc",):
            assert "SSC" in metric.description, metric.name
        else:
            assert any(t in metric.description for t in tables), metric.name
