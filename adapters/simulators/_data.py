"""A deterministic synthetic population for the reference registry simulators.

`generate_population(seed)` draws persons, companies, marriages, real-estate
certificates and tax payment proofs from one `random.Random(seed)`: the same
seed always gives the same population, so tests and demos can name holders
without fixtures. Every citizen id carries a valid GB 11643 check character
and every USCC a valid GB 32100 one. All dates lie in 1950–2025, independent
of today's date.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from govshare.directory import (
    citizen_id_check_character,
    uscc_check_character,
)

__all__ = [
    "DISTRICTS",
    "Company",
    "MarriageRecord",
    "Person",
    "Population",
    "RealEstateCertificate",
    "TaxPaymentProof",
    "generate_population",
]

#: Hangzhou district codes (GB/T 2260) with the short names used in authority titles.
DISTRICTS: dict[str, str] = {
    "330102": "上城",
    "330105": "拱墅",
    "330106": "西湖",
    "330108": "滨江",
    "330109": "萧山",
    "330110": "余杭",
}
_STREETS: dict[str, tuple[str, ...]] = {
    "330102": ("解放路", "庆春路", "清泰街", "望江路"),
    "330105": ("湖墅南路", "莫干山路", "上塘路", "大关路"),
    "330106": ("文三路", "文二路", "天目山路", "学院路", "古墩路"),
    "330108": ("江南大道", "滨盛路", "长河路", "江虹路"),
    "330109": ("人民路", "市心路", "金城路"),
    "330110": ("文一西路", "五常大道", "良睦路"),
}
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余"
    "于杜叶程魏苏吕丁任沈姚卢钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛段雷龙"
    "黎史陶贺毛郝顾龚邵万钱戴严楼应"
)
_GIVEN_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国志文博"
_GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀玲桂英华慧巧美雪琳晶颖洁婷蓉萍红梅佳欣怡雯倩琪璐瑶"
# Weighted so that about nineteen in twenty persons are 汉族, as in Zhejiang.
_ETHNICITIES = (
    ("汉族", 950), ("畲族", 15), ("回族", 10), ("满族", 10), ("土家族", 8), ("苗族", 7),
)  # fmt: skip

_USCC_BODY_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_COMPANY_REGIONS = ("330100", "330102", "330105", "330106", "330108", "330110")
_COMPANY_WORDS = (
    "云帆", "数智", "恒信", "卓越", "瑞达", "天成", "华誉", "博远", "融汇", "启明", "正泰",
    "新禾", "明德", "锦程", "星河", "安和", "鼎盛", "汇智", "清源", "盛华",
)  # fmt: skip
_COMPANY_TRADES = (
    "科技", "网络科技", "信息技术", "贸易", "餐饮管理", "建筑工程", "文化传媒", "电子商务",
    "生物科技", "物业管理",
)  # fmt: skip
_COMPANY_TYPES = (
    ("有限责任公司(自然人投资或控股)", 60),
    ("有限责任公司(自然人独资)", 20),
    ("有限责任公司(非自然人投资或控股的法人独资)", 12),
    ("股份有限公司(非上市、自然人投资或控股)", 8),
)
_BUSINESS_SCOPES = (
    "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；软件开发；"
    "信息系统集成服务（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
    "一般项目：日用百货销售；服装服饰零售；互联网销售（除销售需要许可的商品）"
    "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
    "许可项目：餐饮服务（依法须经批准的项目，经相关部门批准后方可开展经营活动）。",
    "许可项目：建设工程施工（依法须经批准的项目，经相关部门批准后方可开展经营活动）。",
    "一般项目：物业管理；停车场服务；家政服务"
    "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
)
_CAPITALS = ("10", "50", "100", "200", "300", "500", "1000", "3000", "5000")
_COMPANY_STATUSES = (("存续", 80), ("在业", 12), ("注销", 8))
_USAGES = (("住宅", 85), ("商业", 15))
_RIGHT_TYPES = (("国有建设用地使用权/房屋所有权", 95), ("集体建设用地使用权/房屋所有权", 5))

_CST = dt.timezone(dt.timedelta(hours=8))
_LAST_DAY = dt.date(2025, 12, 31)
_CENTS = Decimal("0.01")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Person:
    """A resident as the public-security registry holds them."""

    citizen_id: str
    name: str
    sex: str  # 男 / 女
    ethnicity: str  # label, e.g. 汉族
    birth_date: dt.date
    address: str
    issuing_authority: str
    valid_until: dt.date | None  # None: the identity card is valid for life (长期)


@dataclass(frozen=True, slots=True)
class Company:
    """A business licence as the market-regulation registry holds it."""

    uscc: str
    name: str
    company_type: str
    legal_representative: str
    registered_capital: Decimal  # 万元, two decimal places
    established_date: dt.date
    address: str
    business_scope: str
    registration_authority: str
    status: str  # 存续 / 在业 / 注销


@dataclass(frozen=True, slots=True)
class MarriageRecord:
    """One marriage (结婚) or divorce (离婚) registration."""

    certificate_number: str
    kind: str  # 结婚 / 离婚
    registration_date: dt.date
    husband_id: str
    wife_id: str
    registration_authority: str


@dataclass(frozen=True, slots=True)
class RealEstateCertificate:
    """A real-estate title (不动产权证书) of one owner."""

    certificate_number: str
    owner_id: str
    owner_name: str
    location: str
    area: Decimal  # square metres, two decimal places
    usage: str
    right_type: str
    registration_date: dt.date


@dataclass(frozen=True, slots=True)
class TaxPaymentProof:
    """A tax payment proof (税收完税证明) of one taxpayer."""

    certificate_number: str
    taxpayer_id: str
    taxpayer_name: str
    tax_authority: str
    period_start: dt.date
    period_end: dt.date
    total_amount: Decimal  # yuan, two decimal places
    issued_at: dt.datetime  # aware, UTC+8

    @property
    def issue_date(self) -> dt.date:
        """The issue date in China Standard Time."""
        return self.issued_at.astimezone(_CST).date()


@dataclass(frozen=True)
class Population:
    """Everything the five simulated registries hold, with lookups by holder id.

    Lookups return records the way a registry lists them: marriage records
    and real-estate certificates most recent first.
    """

    persons: tuple[Person, ...]
    companies: tuple[Company, ...]
    marriages: tuple[MarriageRecord, ...]
    real_estate: tuple[RealEstateCertificate, ...]
    tax_proofs: tuple[TaxPaymentProof, ...]
    _persons_by_id: dict[str, Person] = field(init=False, repr=False, compare=False)
    _companies_by_id: dict[str, Company] = field(init=False, repr=False, compare=False)
    _marriages_by_id: dict[str, tuple[MarriageRecord, ...]] = field(
        init=False, repr=False, compare=False
    )
    _estates_by_id: dict[str, tuple[RealEstateCertificate, ...]] = field(
        init=False, repr=False, compare=False
    )
    _tax_by_id: dict[str, TaxPaymentProof] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        marriages: dict[str, list[MarriageRecord]] = {}
        for record in self.marriages:
            marriages.setdefault(record.husband_id, []).append(record)
            marriages.setdefault(record.wife_id, []).append(record)
        estates: dict[str, list[RealEstateCertificate]] = {}
        for estate in self.real_estate:
            estates.setdefault(estate.owner_id, []).append(estate)
        # Frozen, so the indexes are set once here and never again.
        setattr_ = object.__setattr__
        setattr_(self, "_persons_by_id", {p.citizen_id: p for p in self.persons})
        setattr_(self, "_companies_by_id", {c.uscc: c for c in self.companies})
        setattr_(self, "_marriages_by_id", _newest_first(marriages, _marriage_key))
        setattr_(self, "_estates_by_id", _newest_first(estates, _estate_key))
        setattr_(self, "_tax_by_id", {t.taxpayer_id: t for t in self.tax_proofs})

    def person(self, citizen_id: str) -> Person | None:
        """The person with `citizen_id`, if any."""
        return self._persons_by_id.get(citizen_id)

    def company(self, uscc: str) -> Company | None:
        """The company with `uscc`, if any."""
        return self._companies_by_id.get(uscc)

    def marriage_records(self, citizen_id: str) -> tuple[MarriageRecord, ...]:
        """The person's marriage and divorce records, most recent first."""
        return self._marriages_by_id.get(citizen_id, ())

    def marital_status(self, citizen_id: str) -> str | None:
        """已婚 or 离婚 from the most recent record; None without any record."""
        records = self.marriage_records(citizen_id)
        if not records:
            return None
        return "已婚" if records[0].kind == "结婚" else "离婚"

    def spouse_of(self, citizen_id: str, record: MarriageRecord) -> Person:
        """The other party of `record`."""
        other = record.wife_id if record.husband_id == citizen_id else record.husband_id
        return self._persons_by_id[other]

    def real_estate_of(self, citizen_id: str) -> tuple[RealEstateCertificate, ...]:
        """The person's real-estate certificates, most recently registered first."""
        return self._estates_by_id.get(citizen_id, ())

    def tax_proof(self, citizen_id: str) -> TaxPaymentProof | None:
        """The person's tax payment proof, if any."""
        return self._tax_by_id.get(citizen_id)

    # Holder pickers for demos and tests: each returns the first match in
    # population order, so the same seed always names the same holder.

    def person_with_marriage_and_property(self) -> Person:
        """The first currently married person who owns real estate."""
        return self._first_person(
            lambda p: (
                self.marital_status(p.citizen_id) == "已婚"
                and bool(self.real_estate_of(p.citizen_id))
            )
        )

    def person_with_all_records(self) -> Person:
        """The first married property owner who also has a tax payment proof."""
        return self._first_person(
            lambda p: (
                self.marital_status(p.citizen_id) == "已婚"
                and bool(self.real_estate_of(p.citizen_id))
                and self.tax_proof(p.citizen_id) is not None
            )
        )

    def person_without_marriage(self) -> Person:
        """The first adult (born before 2000) with no marriage record at all."""
        return self._first_person(
            lambda p: p.birth_date.year < 2000 and not self.marriage_records(p.citizen_id)
        )

    def divorced_person(self) -> Person:
        """The first person whose most recent marriage record is a divorce."""
        return self._first_person(lambda p: self.marital_status(p.citizen_id) == "离婚")

    def active_company(self) -> Company:
        """The first company whose registration status is 存续."""
        for company in self.companies:
            if company.status == "存续":
                return company
        raise LookupError("no company in business in this population")

    def unknown_citizen_id(self) -> str:
        """A valid citizen id that no person in the population holds."""
        for order in range(1000):
            first17 = f"33010619800101{order:03d}"
            candidate: str = first17 + citizen_id_check_character(first17)
            if candidate not in self._persons_by_id:
                return candidate
        raise LookupError("no unused citizen id left")  # pragma: no cover

    def unknown_uscc(self) -> str:
        """A valid USCC that no company in the population holds."""
        for serial in range(1000):
            first17 = f"91330106MA2{serial:06d}"
            candidate: str = first17 + uscc_check_character(first17)
            if candidate not in self._companies_by_id:
                return candidate
        raise LookupError("no unused USCC left")  # pragma: no cover

    def _first_person(self, wanted: Callable[[Person], bool]) -> Person:
        for person in self.persons:
            if wanted(person):
                return person
        raise LookupError("no such person in this population")


def _marriage_key(record: MarriageRecord) -> tuple[dt.date, str]:
    return record.registration_date, record.certificate_number


def _estate_key(estate: RealEstateCertificate) -> tuple[dt.date, str]:
    return estate.registration_date, estate.certificate_number


def _newest_first(
    groups: dict[str, list[_T]], key: Callable[[_T], tuple[dt.date, str]]
) -> dict[str, tuple[_T, ...]]:
    return {k: tuple(sorted(v, key=key, reverse=True)) for k, v in groups.items()}


def generate_population(
    seed: int = 20261123, persons: int = 3000, companies: int = 1000
) -> Population:
    """Draw a population from `seed`; the same arguments give an equal population."""
    rng = random.Random(seed)
    people = _persons(rng, persons)
    return Population(
        persons=people,
        companies=_companies(rng, companies, people),
        marriages=_marriages(rng, people),
        real_estate=_real_estate(rng, people),
        tax_proofs=_tax_proofs(rng, people),
    )


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _date_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randrange((last - first).days + 1))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


def _street_address(rng: random.Random, district: str) -> str:
    street = rng.choice(_STREETS[district])
    number, building, unit = rng.randint(1, 999), rng.randint(1, 30), rng.randint(1, 4)
    room = f"{rng.randint(1, 30)}{rng.randint(1, 4):02d}"
    return f"浙江省杭州市{DISTRICTS[district]}区{street}{number}号{building}幢{unit}单元{room}室"


def _persons(rng: random.Random, count: int) -> tuple[Person, ...]:
    seen: set[str] = set()
    result: list[Person] = []
    while len(result) < count:
        male = rng.random() < 0.5
        birth = _date_between(rng, dt.date(1950, 1, 1), dt.date(2005, 12, 31))
        birth_district = rng.choice(tuple(DISTRICTS))
        order = rng.randrange(500) * 2 + (1 if male else 0)
        first17 = f"{birth_district}{birth:%Y%m%d}{order:03d}"
        citizen_id = first17 + citizen_id_check_character(first17)
        if citizen_id in seen:
            continue
        seen.add(citizen_id)
        given = _GIVEN_MALE if male else _GIVEN_FEMALE
        name = rng.choice(_SURNAMES) + "".join(rng.choices(given, k=rng.choice((1, 2, 2))))
        home = rng.choice(tuple(DISTRICTS))
        issued = _date_between(rng, max(_add_years(birth, 16), dt.date(2010, 1, 1)), _LAST_DAY)
        age = issued.year - birth.year - ((issued.month, issued.day) < (birth.month, birth.day))
        # GB/T identity-card validity: 10 years under 26, 20 under 46, then for life.
        valid_until = None if age >= 46 else _add_years(issued, 10 if age < 26 else 20)
        result.append(
            Person(
                citizen_id=citizen_id,
                name=name,
                sex="男" if male else "女",
                ethnicity=_weighted(rng, _ETHNICITIES),
                birth_date=birth,
                address=_street_address(rng, home),
                issuing_authority=f"杭州市公安局{DISTRICTS[home]}分局",
                valid_until=valid_until,
            )
        )
    return tuple(result)


def _companies(rng: random.Random, count: int, people: Sequence[Person]) -> tuple[Company, ...]:
    codes: set[str] = set()
    names: set[str] = set()
    result: list[Company] = []
    while len(result) < count:
        region = rng.choice(_COMPANY_REGIONS)
        first17 = "91" + region + "".join(rng.choices(_USCC_BODY_ALPHABET, k=9))
        uscc = first17 + uscc_check_character(first17)
        company_type = _weighted(rng, _COMPANY_TYPES)
        suffix = "股份有限公司" if company_type.startswith("股份") else "有限公司"
        place = DISTRICTS.get(region, "")
        trade = rng.choice(_COMPANY_TRADES)
        name = f"杭州{place}{rng.choice(_COMPANY_WORDS)}{trade}{suffix}"
        while name in names:  # names are unique within a registration area
            words = "".join(rng.choices(_COMPANY_WORDS, k=2))
            name = f"杭州{place}{words}{trade}{suffix}"
        if uscc in codes:
            continue
        codes.add(uscc)
        names.add(name)
        capital = Decimal(rng.choice(_CAPITALS))
        if rng.random() < 0.2:
            capital = Decimal(rng.randint(1000, 999999)) / 100
        district = region if region in DISTRICTS else rng.choice(tuple(DISTRICTS))
        authority = f"杭州市{place}区" if place else "杭州市"
        result.append(
            Company(
                uscc=uscc,
                name=name,
                company_type=company_type,
                legal_representative=rng.choice(people).name,
                registered_capital=capital.quantize(_CENTS),
                established_date=_date_between(rng, dt.date(1995, 1, 1), dt.date(2024, 12, 31)),
                address=_street_address(rng, district),
                business_scope=rng.choice(_BUSINESS_SCOPES),
                registration_authority=f"{authority}市场监督管理局",
                status=_weighted(rng, _COMPANY_STATUSES),
            )
        )
    return tuple(result)


def _serials(rng: random.Random) -> Iterator[int]:
    serial = rng.randint(1000, 9000)
    while True:
        serial += rng.randint(1, 7)
        yield serial


def _marriages(rng: random.Random, people: Sequence[Person]) -> tuple[MarriageRecord, ...]:
    # Legal marrying age: 22 for men, 20 for women (婚姻法).
    men = [p for p in people if p.sex == "男" and _add_years(p.birth_date, 22) <= _LAST_DAY]
    women = [p for p in people if p.sex == "女" and _add_years(p.birth_date, 20) <= _LAST_DAY]
    rng.shuffle(men)
    rng.shuffle(women)
    pairs = min(len(men), len(women), round(0.2 * (len(men) + len(women))))
    serials = _serials(rng)
    records: list[MarriageRecord] = []
    for husband, wife in zip(men[:pairs], women[:pairs], strict=True):
        earliest = max(
            _add_years(husband.birth_date, 22), _add_years(wife.birth_date, 20), dt.date(1980, 1, 1)
        )
        married = _date_between(rng, earliest, _LAST_DAY)
        records.append(_marriage_record(rng, "J", married, husband, wife, next(serials)))
        if rng.random() < 0.08 and _add_years(married, 1) < _LAST_DAY:
            divorced = _date_between(rng, _add_years(married, 1), _LAST_DAY)
            records.append(_marriage_record(rng, "L", divorced, husband, wife, next(serials)))
    return tuple(records)


def _marriage_record(
    rng: random.Random, prefix: str, day: dt.date, husband: Person, wife: Person, serial: int
) -> MarriageRecord:
    district = rng.choice(tuple(DISTRICTS))
    return MarriageRecord(
        certificate_number=f"{prefix}{district}-{day.year}-{serial:06d}",
        kind="结婚" if prefix == "J" else "离婚",
        registration_date=day,
        husband_id=husband.citizen_id,
        wife_id=wife.citizen_id,
        registration_authority=f"杭州市{DISTRICTS[district]}区民政局",
    )


def _real_estate(rng: random.Random, people: Sequence[Person]) -> tuple[RealEstateCertificate, ...]:
    serials = _serials(rng)
    result: list[RealEstateCertificate] = []
    for person in people:
        earliest = max(_add_years(person.birth_date, 18), dt.date(2008, 1, 1))
        if rng.random() >= 0.3 or earliest > _LAST_DAY:
            continue
        for _ in range(rng.choice((1, 1, 1, 2))):
            registered = _date_between(rng, earliest, _LAST_DAY)
            district = rng.choice(tuple(DISTRICTS))
            address = _street_address(rng, district).removeprefix("浙江省")
            result.append(
                RealEstateCertificate(
                    certificate_number=(
                        f"浙({registered.year})杭州市不动产权第{next(serials):07d}号"
                    ),
                    owner_id=person.citizen_id,
                    owner_name=person.name,
                    location=address,
                    area=(Decimal(rng.randint(3500, 22000)) / 100).quantize(_CENTS),
                    usage=_weighted(rng, _USAGES),
                    right_type=_weighted(rng, _RIGHT_TYPES),
                    registration_date=registered,
                )
            )
    return tuple(result)


_TAX_QUARTERS = ((2024, 1), (2024, 2), (2024, 3), (2024, 4), (2025, 1), (2025, 2), (2025, 3))


def _tax_period(rng: random.Random) -> tuple[dt.date, dt.date]:
    """A calendar year (three times in ten) or a quarter, ending by 2025-09-30."""
    if rng.random() < 0.3:
        return dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    year, quarter = rng.choice(_TAX_QUARTERS)
    start = dt.date(year, 3 * quarter - 2, 1)
    if quarter == 4:
        return start, dt.date(year, 12, 31)
    return start, dt.date(year, 3 * quarter + 1, 1) - dt.timedelta(days=1)


def _tax_proofs(rng: random.Random, people: Sequence[Person]) -> tuple[TaxPaymentProof, ...]:
    serials = _serials(rng)
    result: list[TaxPaymentProof] = []
    for person in people:
        if rng.random() >= 0.6:
            continue
        start, end = _tax_period(rng)
        if _add_years(person.birth_date, 16) > start:
            continue
        district = rng.choice(tuple(DISTRICTS))
        issue_day = end + dt.timedelta(days=rng.randint(10, 60))
        # Any hour of the day: proofs issued before 08:00 fall on the previous
        # day in UTC, which is what the taxation simulator sends.
        issued_at = dt.datetime.combine(
            issue_day, dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60)), _CST
        )
        result.append(
            TaxPaymentProof(
                certificate_number=f"{district}{issue_day:%y}{next(serials):010d}",
                taxpayer_id=person.citizen_id,
                taxpayer_name=person.name,
                tax_authority=f"国家税务总局杭州市{DISTRICTS[district]}区税务局",
                period_start=start,
                period_end=end,
                total_amount=(Decimal(rng.randint(5000, 5_000_000)) / 100).quantize(_CENTS),
                issued_at=issued_at,
            )
        )
    return tuple(result)
