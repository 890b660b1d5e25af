"""The views the county's monitoring platform reads, and their comments (one place for all).

Plain SQL that SQLite and PostgreSQL both accept. They hold no plaintext ID or name: warnings
carry the householder's masked ID and name, candidates the masked ID and name. Every column is
described here; on PostgreSQL the descriptions become COMMENTs (`comment_views`), so whoever
reads the platform's views sees what each column means.

`create_views` runs after the tables exist (the migrations' upgrade, and create_all): on
PostgreSQL CREATE OR REPLACE VIEW under an advisory lock, so grants and comments on a view
survive and parallel tasks do not race; on SQLite (no OR REPLACE, no grants) drop and create in
the same transaction. SQLite refuses to rename a table a view names, which is how Alembic alters
a table there: drop the views first (`drop_views`) around such a migration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# An arbitrary constant: the key of the advisory lock serialising view DDL on PostgreSQL.
_VIEW_LOCK_KEY = 74_231_905

# column -> comment of household_snapshot's columns (the snapshot view shows them all)
SNAPSHOT_COLUMNS: Mapping[str, str] = {
    "snapshot_date": "快照日期（县日）/ county day of the snapshot",
    "household_id": "户编号 / household ID of the national system",
    "township": "乡（镇）/ township",
    "village": "行政村 / village",
    "household_type": "户类型：脱贫户、一般农户 / household type",
    "monitoring_type": "监测对象类别（空=非监测户）/ monitoring type (blank: not monitored)",
    "relocated": "是否易地搬迁 / relocated household",
    "income_year": "收入年度 / income year of the figures",
    "wage_income": "工资性收入（元/年）/ wage income, yuan a year",
    "business_income": "生产经营性收入（元/年）/ business income",
    "property_income": "财产性收入（元/年）/ property income",
    "transfer_income": "转移性收入（元/年）/ transfer income",
    "business_expense": "生产经营性支出（元/年）/ business expenses",
    "net_income": "家庭纯收入（元/年）/ household net income",
    "household_size": "家庭人口数 / household size (as reported)",
    "per_capita_net_income": "家庭人均纯收入（元）/ per-capita net income",
    "members": "名册成员数 / members on the roster",
    "labour_members": "有劳动能力成员数 / members able to work",
    "employed_members": "已就业成员数 / members employed",
    "public_welfare_job_members": "公益性岗位就业成员数 / members in public-welfare jobs",
    "assistance_types": "在保救助类别（|分隔）/ active social assistance types",
    "assistance_monthly_amount": "月救助金额合计（元）/ monthly assistance, yuan",
    "serious_illness_members": "大病患者数 / members with a serious illness",
    "chronic_illness_members": "慢病患者数 / members with a chronic illness",
    "students": "在学籍名单中的成员数 / members on the school lists",
    "dropouts": "辍学成员数 / members who dropped out",
    "student_fees_paid": "学生个人承担费用合计（元）/ school fees paid, yuan",
    "housing_grade": "住房安全鉴定最差等级 A-D / worst housing safety grade",
    "housing_renovation_status": "该住房改造状态 / renovation status of that house",
    "medical_out_of_pocket_ytd": "本年医疗个人自付合计（元）/ medical out-of-pocket this year",
    "insured_members": "本年已参保成员数 / members insured this year",
    "uninsured_members": "本年未参保成员数 / members not insured this year",
    "built_at": "快照生成时间 / when the snapshot was built",
}

WARNING_COLUMNS: Mapping[str, str] = {
    "household_id": "户编号 / household ID",
    "township": "乡（镇）/ township",
    "village": "行政村 / village",
    "head_id_masked": "户主身份证号（脱敏）/ householder's ID, masked",
    "head_name_masked": "户主姓名（脱敏）/ householder's name, masked",
    "rule_id": "预警规则编号（rules/warning_rules.yaml）/ warning rule",
    "rule_name_zh": "预警规则名称 / rule name",
    "risk_type": "风险类型 / risk type",
    "first_seen": "首次发现日期 / first day the signal was seen",
    "last_seen": "最近发现日期 / latest day the signal was seen",
    "reopened_count": "解除后再次预警次数 / times reopened after being resolved",
    "last_event": "最近变化：new 新增、still_open 持续、reopened 再次预警 / latest event",
    "last_event_date": "最近变化日期 / day of the latest event",
    "evidence_zh": "预警依据（脱敏）/ evidence in words, masked",
    "evidence": "预警依据：数值、参数、来源部门/文件/工作表/行（JSON，脱敏）/ evidence as JSON",
}

INDICATOR_COLUMNS: Mapping[str, str] = {
    "year": "指标所属年度（收入类为收入年度）/ year the figure is about",
    "as_of_date": "计算日期 / county day it was computed",
    "level": "层级：county 县、township 乡镇、village 村 / level",
    "area": "区域名称（村为“乡镇/村”）/ area",
    "township": "所属乡镇 / township",
    "indicator": "指标编号（rules/plan_indicators.yaml）/ indicator code",
    "name_zh": "指标名称 / indicator name",
    "value": "指标值（无数据时为空）/ value (blank without data)",
    "target": "规划目标值 / the plan's target",
    "unit": "单位 / unit",
    # (appended: PostgreSQL replaces a view only with its old columns first, in order)
    "status": "计算状态：computed 已计算、insufficient_data 数据不足 / computed or not",
    "reason_zh": "数据不足的原因（缺少哪个部门数据或哪些列），或计算说明 / why not computed",
}

RULE_STATUS_COLUMNS: Mapping[str, str] = {
    "as_of_date": "日期（县日）/ county day",
    "kind": "类别：rule 预警规则、indicator 规划指标 / rule or indicator",
    "code": "规则编号或指标编号 / rule id or indicator code",
    "name_zh": "名称 / name",
    "status": "计算状态：computed 已计算、insufficient_data 数据不足 / computed or not",
    "reason_zh": "数据不足的原因（缺少哪个部门数据或哪些列），或计算说明 / why not computed",
    "missing_inputs": "未报送的数据集或列（JSON）/ inputs not delivered, as JSON",
}

RECONCILIATION_COLUMNS: Mapping[str, str] = {
    "as_of_date": "日期（县日）/ county day",
    "rule_id": "预警规则编号 / warning rule",
    "household_id": "户编号 / household ID",
    "township": "乡（镇）/ township",
    "village": "行政村 / village",
    "id_masked": "身份证号（脱敏）/ ID, masked",
    "name_masked": "姓名（脱敏）/ name, masked",
    "bureau": "需核对的部门 / bureau to reconcile with",
    "dataset": "名单 / the bureau's list",
    "kind": "not_listed 不在名单中、refused 名单中该人记录有误未入库 / kind of gap",
    "detail_zh": "说明（脱敏）/ what is missing and why, masked",
    "sources": "有误记录的文件、工作表、行（JSON）/ the refused rows",
    "first_seen": "首次发现日期 / first day seen",
    "deliveries_since": "此后该部门报送次数 / deliveries since, gap still there",
    "status": "open 待核对、escalated 已转为预警 / open or escalated to a warning",
}

DELIVERY_COLUMNS: Mapping[str, str] = {
    "as_of_date": "日期（县日）/ county day",
    "bureau": "部门代码 / bureau code",
    "bureau_zh": "报送部门 / bureau",
    "dataset": "数据集 / dataset",
    "title_zh": "数据名称 / dataset name",
    "cadence_zh": "报送要求，如每月10日前 / when it is due",
    "due_date": "本期截止日期 / latest due date",
    "next_due_date": "下期截止日期 / next due date",
    "last_delivered": "最近一次报送日期（县日）/ latest delivery, county day",
    "state": (
        "报送状态：on_time 按时报送、late 逾期后已报、overdue 逾期未报、never 从未报送 / state"
    ),
    "days_late": "逾期天数 / days late",
    "note_zh": "说明 / note",
}

FOLLOW_UP_COLUMNS: Mapping[str, str] = {
    "household_id": "户编号 / household ID",
    "rule_id": "预警规则编号 / warning rule",
    "rule_name_zh": "预警规则 / rule name",
    "township": "乡（镇）/ township",
    "village": "行政村 / village",
    "sent_on": "下发入户核实日期 / sent to the township on",
    "due_on": "应核实日期 / visit due by",
    "state": (
        "awaiting 待核实、overdue 逾期未核实、confirmed 情况属实、"
        "dismissed 情况不属实（暂不再预警）、data_error 数据有误（转部门核对）、"
        "evidence_changed 依据变化重新核实、other 其他 / state"
    ),
    "result": "入户核实结果 / the township's answer",
    "verified_on": "核实日期 / visited on",
    "verifier_masked": "核实人（脱敏）/ visited by, masked",
    "remarks_masked": "备注（脱敏）/ remarks, masked",
    "visit_manifest_id": "回传文件编号 / returned workbook (file_manifest id)",
    "visit_sheet": "回传工作表 / its sheet",
    "visit_row": "回传行号 / its row",
    "quiet_until": "暂不再预警至 / not sent again until",
    "evidence_changed_on": "预警依据变化日期 / evidence changed on",
    "bureaus": "数据有误时需核对的部门（JSON）/ bureaus to reconcile a data problem",
    "as_of_date": "日期（县日）/ county day",
}

PRECISION_COLUMNS: Mapping[str, str] = {
    "rule_id": "预警规则编号 / warning rule",
    "rule_name_zh": "预警规则 / rule name",
    "township": "乡（镇）/ township",
    "sent": "下发入户核实数 / warnings sent for a visit",
    "answered": "已回传结果数 / answered",
    "confirmed": "情况属实数 / confirmed by the field",
    "dismissed": "情况不属实数 / not so",
    "data_error": "数据有误数 / data problems",
    "overdue": "逾期未核实数 / visits overdue",
    "precision": "核实属实率：属实/(属实+不属实+数据有误) / share the field confirmed",
}

_CONFIRMED = "('情况属实-已纳入监测', '情况属实-已有帮扶')"


def _precision_sql(_cols: Mapping[str, str]) -> str:
    def count(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    confirmed = count(f"f.result IN {_CONFIRMED}")
    judged = count(
        "f.result IN ('情况属实-已纳入监测', '情况属实-已有帮扶', '情况不属实', '数据有误')"
    )
    dismissed = count("f.result = '情况不属实'")
    data_error = count("f.result = '数据有误'")
    overdue = count("f.state = 'overdue'")
    return (
        "SELECT f.rule_id, f.rule_name_zh, f.township, COUNT(*) AS sent, "
        f"{count('f.result IS NOT NULL')} AS answered, {confirmed} AS confirmed, "
        f"{dismissed} AS dismissed, {data_error} AS data_error, {overdue} AS overdue, "
        f"CAST({confirmed} AS NUMERIC) / NULLIF({judged}, 0) AS precision "
        "FROM warning_follow_up f GROUP BY f.rule_id, f.rule_name_zh, f.township"
    )


CANDIDATE_COLUMNS: Mapping[str, str] = {
    "snapshot_date": "日期 / county day",
    "rule_id": "预警规则编号 / warning rule",
    "risk_type": "风险类型 / risk type",
    "id_masked": "身份证号（脱敏）/ ID, masked",
    "name_masked": "姓名（脱敏）/ name, masked",
    "dataset": "来源数据集 / dataset",
    "bureau": "来源部门 / bureau",
    "file_name": "来源文件 / file",
    "sheet": "工作表 / sheet",
    "source_row": "行号（与Excel一致）/ row as Excel shows it",
    "township": "乡（镇），来源数据载明时 / township, where the data says",
    "village": "行政村，来源数据载明时 / village, where the data says",
    "evidence_zh": "预警依据（脱敏）/ evidence in words, masked",
}


def _columns(names: Mapping[str, str], alias: str) -> str:
    return ", ".join(f"{alias}.{name}" for name in names)


def _snapshot_columns() -> dict[str, str]:
    """The snapshot table's columns as they are now, described (a column added to the table
    later shows with its name until it is described here)."""
    from transforms.warehouse.tables import household_snapshot

    return {c.name: SNAPSHOT_COLUMNS.get(c.name, c.name) for c in household_snapshot.columns}


@dataclass(frozen=True)
class View:
    comment: str
    columns: Callable[[], Mapping[str, str]]
    select: Callable[[Mapping[str, str]], str]


VIEWS: Mapping[str, View] = {
    "v_platform_household_snapshot": View(
        "每日户快照：收入、劳动力、就业、救助、疾病、教育、住房、医保 / household per day",
        _snapshot_columns,
        lambda cols: f"SELECT {_columns(cols, 's')} FROM household_snapshot s",
    ),
    "v_platform_warnings": View(
        "未解除的户风险预警（脱敏）/ open risk warnings per household, masked",
        lambda: WARNING_COLUMNS,
        lambda cols: f"SELECT {_columns(cols, 'w')} FROM risk_warning w WHERE w.status = 'open'",
    ),
    "v_platform_plan_indicators": View(
        "规划指标，每年度取最近一次计算 / the plan's indicators, latest computation per year",
        lambda: INDICATOR_COLUMNS,
        lambda cols: (
            f"SELECT {_columns(cols, 'p')} FROM plan_indicator p "
            "WHERE p.as_of_date = (SELECT MAX(q.as_of_date) FROM plan_indicator q "
            "WHERE q.year = p.year)"
        ),
    ),
    "v_platform_rule_status": View(
        "预警规则和规划指标能否计算（最近一日；数据不足时说明原因）/ whether each rule and "
        "indicator could be computed, latest day, and why not",
        lambda: RULE_STATUS_COLUMNS,
        lambda cols: (
            f"SELECT {_columns(cols, 'r')} FROM rule_status r "
            "WHERE r.as_of_date = (SELECT MAX(d.as_of_date) FROM rule_status d)"
        ),
    ),
    "v_platform_reconciliation": View(
        "核对清单：因不在部门名单中或名单记录有误而未作为预警的人员（最近一日，脱敏）/ gaps in "
        "the bureaus' lists to reconcile before any visit, latest day, masked",
        lambda: RECONCILIATION_COLUMNS,
        lambda cols: (
            f"SELECT {_columns(cols, 'r')} FROM reconciliation_item r "
            "WHERE r.as_of_date = (SELECT MAX(m.as_of_date) FROM reconciliation_item m)"
        ),
    ),
    "v_platform_delivery": View(
        "各部门数据报送情况（最近一日：截止日期、最近报送、是否逾期）/ each bureau's "
        "deliveries against their calendar, latest day",
        lambda: DELIVERY_COLUMNS,
        lambda cols: (
            f"SELECT {_columns(cols, 'd')} FROM delivery_status d "
            "WHERE d.as_of_date = (SELECT MAX(m.as_of_date) FROM delivery_status m)"
        ),
    ),
    "v_platform_follow_up": View(
        "入户核实跟踪：下发、回传结果、逾期、暂不再预警（脱敏）/ each warning sent for a home "
        "visit and what the township answered, masked",
        lambda: FOLLOW_UP_COLUMNS,
        lambda cols: f"SELECT {_columns(cols, 'f')} FROM warning_follow_up f",
    ),
    "v_platform_field_precision": View(
        "各预警规则在各乡镇的入户核实属实率 / per rule and township, the share of warnings the "
        "field confirmed",
        lambda: PRECISION_COLUMNS,
        _precision_sql,
    ),
    "v_platform_inclusion_candidates": View(
        "不在名册但有风险信号的人员（体外循环核查，最近一日，脱敏）/ people off the roster "
        "with a risk signal, latest day, masked",
        lambda: CANDIDATE_COLUMNS,
        lambda cols: (
            f"SELECT {_columns(cols, 'c')} FROM inclusion_candidate c "
            "WHERE c.snapshot_date = (SELECT MAX(d.snapshot_date) FROM inclusion_candidate d)"
        ),
    ),
}


def view_sql(name: str) -> str:
    view = VIEWS[name]
    return view.select(view.columns())


def create_views(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _VIEW_LOCK_KEY})
        for name in VIEWS:
            conn.execute(sa.text(f"CREATE OR REPLACE VIEW {name} AS {view_sql(name)}"))
        return
    for name in VIEWS:
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE VIEW {name} AS {view_sql(name)}"))


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comment_views(conn: Connection) -> None:
    """COMMENT ON every platform view and each of its columns (PostgreSQL; SQLite keeps no
    comments)."""
    if conn.dialect.name != "postgresql":
        return
    for name, view in VIEWS.items():
        conn.execute(sa.text(f"COMMENT ON VIEW {name} IS {literal(view.comment)}"))
        for column, comment in view.columns().items():
            conn.execute(sa.text(f"COMMENT ON COLUMN {name}.{column} IS {literal(comment)}"))


def drop_views(conn: Connection) -> None:
    for name in reversed(list(VIEWS)):
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))


def _after_create(_target: Any, connection: Connection, **_kw: Any) -> None:
    create_views(connection)
    comment_views(connection)


def register(metadata: sa.MetaData) -> None:
    if not sa.event.contains(metadata, "after_create", _after_create):
        sa.event.listen(metadata, "after_create", _after_create)
