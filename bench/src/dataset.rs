//! Generated document metadata for the `search` scenario: what an archive of business
//! documents looks like to the index (keys in a `dept/year/customer/type/file.ext` hierarchy,
//! 5–10 attributes from Russian and English vocabularies, tags on some), reproducible from a
//! seed so every run and every database gets the same objects.

use std::collections::BTreeMap;

use artstore_metadata::ObjectRecord;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const BUCKETS: [&str; 6] = [
    "contracts",
    "finance",
    "hr-records",
    "legal-archive",
    "scans",
    "reports",
];

pub const DEPARTMENTS: [&str; 12] = [
    "sales",
    "legal",
    "finance",
    "hr",
    "it",
    "logistics",
    "procurement",
    "marketing",
    "audit",
    "support",
    "rnd",
    "security",
];

pub const FIRST_YEAR: i32 = 2005;
pub const YEARS: i32 = 22;
/// Customer ids `c00000` … ; a customer has about N / CUSTOMERS documents.
pub const CUSTOMERS: u32 = 20_000;

/// Document types, each with the words its file names and descriptions use.
pub const DOC_TYPES: [&str; 16] = [
    "договор",
    "счет",
    "акт",
    "накладная",
    "протокол",
    "приказ",
    "заявка",
    "справка",
    "invoice",
    "contract",
    "report",
    "letter",
    "specification",
    "agreement",
    "statement",
    "memo",
];

/// Words of descriptions and titles, Russian and English.
pub const WORDS: [&str; 120] = [
    "поставки",
    "оказания",
    "услуг",
    "аренды",
    "помещения",
    "оборудования",
    "ремонта",
    "обслуживания",
    "транспортных",
    "консультационных",
    "страхования",
    "лизинга",
    "подряда",
    "хранения",
    "перевозки",
    "сверки",
    "расчетов",
    "выполненных",
    "работ",
    "приемки",
    "передачи",
    "товара",
    "сырья",
    "материалов",
    "программного",
    "обеспечения",
    "лицензии",
    "гарантии",
    "претензии",
    "оплаты",
    "квартал",
    "годовой",
    "отчет",
    "бухгалтерский",
    "налоговый",
    "кадровый",
    "отпуск",
    "командировка",
    "премия",
    "зарплата",
    "увольнение",
    "прием",
    "перевод",
    "совещание",
    "собрание",
    "акционеров",
    "директоров",
    "устав",
    "доверенность",
    "лицензия",
    "сертификат",
    "декларация",
    "таможенная",
    "экспорт",
    "импорт",
    "склад",
    "логистика",
    "закупка",
    "тендер",
    "конкурс",
    "supply",
    "services",
    "lease",
    "equipment",
    "maintenance",
    "repair",
    "transport",
    "consulting",
    "insurance",
    "leasing",
    "storage",
    "delivery",
    "reconciliation",
    "payment",
    "acceptance",
    "transfer",
    "goods",
    "materials",
    "software",
    "license",
    "warranty",
    "claim",
    "quarterly",
    "annual",
    "tax",
    "audit",
    "payroll",
    "vacation",
    "travel",
    "bonus",
    "hiring",
    "termination",
    "meeting",
    "minutes",
    "shareholders",
    "board",
    "charter",
    "power",
    "attorney",
    "certificate",
    "declaration",
    "customs",
    "export",
    "import",
    "warehouse",
    "procurement",
    "tender",
    "budget",
    "forecast",
    "revenue",
    "expenses",
    "balance",
    "cashflow",
    "compliance",
    "policy",
    "security",
    "incident",
    "risk",
    "strategy",
    "roadmap",
];

/// Syllables of customer (company) names: `ООО Ромашка`-like names, mostly unique words.
const SYLLABLES: [&str; 24] = [
    "ро",
    "ма",
    "шка",
    "вер",
    "тех",
    "снаб",
    "гран",
    "лин",
    "ком",
    "пром",
    "строй",
    "инвест",
    "нова",
    "дор",
    "мет",
    "ал",
    "вест",
    "сиб",
    "ур",
    "вол",
    "га",
    "ник",
    "сер",
    "тал",
];

const STATUSES: [&str; 4] = ["draft", "signed", "archived", "cancelled"];
const CURRENCIES: [&str; 3] = ["RUB", "USD", "EUR"];
const MANAGERS: [&str; 12] = [
    "Иванов",
    "Петрова",
    "Сидоров",
    "Smith",
    "Kuznetsova",
    "Johnson",
    "Волков",
    "Морозова",
    "Brown",
    "Лебедев",
    "Новикова",
    "Miller",
];

/// (extension, content type), most documents being PDFs.
const FORMATS: [(&str, &str); 8] = [
    ("pdf", "application/pdf"),
    ("pdf", "application/pdf"),
    ("pdf", "application/pdf"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("xml", "application/xml"),
];

/// 2015-01-01T00:00:00Z: objects were created over the ten years after it.
const CREATED_FROM_MS: i64 = 1_420_070_400_000;
pub const CREATED_SPAN_MS: i64 = 10 * 365 * 86_400_000;

pub fn customer_id(n: u32) -> String {
    format!("c{n:05}")
}

/// The company name of customer `n`: two or three syllables, capitalised.
pub fn customer_name(n: u32) -> String {
    let s = SYLLABLES.len() as u32;
    let mut name = String::new();
    let mut x = n;
    let parts = 2 + n % 2;
    for _ in 0..parts {
        name.push_str(SYLLABLES[(x % s) as usize]);
        x = x / s + 7;
    }
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => name,
    }
}

/// Object `i` of the dataset, the same for a given `i` on every run.
pub fn object(i: u64) -> ObjectRecord {
    let mut rng = StdRng::seed_from_u64(0x5ea7_c4b0_0000_0000 ^ i);
    let dept = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())];
    let year = FIRST_YEAR + rng.random_range(0..YEARS);
    let customer = rng.random_range(0..CUSTOMERS);
    let doc_type = DOC_TYPES[rng.random_range(0..DOC_TYPES.len())];
    let (ext, content_type) = FORMATS[rng.random_range(0..FORMATS.len())];
    let subject = WORDS[rng.random_range(0..WORDS.len())];
    let name = customer_name(customer);
    let key = format!(
        "{dept}/{year}/{}/{doc_type}/{doc_type} {subject} {name} №{i}.{ext}",
        customer_id(customer)
    );
    let month = rng.random_range(1..=12);
    let day = rng.random_range(1..=28);
    let mut attrs = BTreeMap::new();
    attrs.insert("department".to_owned(), dept.to_owned());
    attrs.insert("year".to_owned(), year.to_string());
    attrs.insert("customer".to_owned(), customer_id(customer));
    attrs.insert("doc_type".to_owned(), doc_type.to_owned());
    attrs.insert("date".to_owned(), format!("{year}-{month:02}-{day:02}"));
    let n_words = rng.random_range(2..=5);
    let mut description = format!("{doc_type} {subject}");
    for _ in 0..n_words {
        description.push(' ');
        description.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    description.push_str(&format!(" ООО {name}"));
    // Five required attributes, then up to five more.
    let optional: [(&str, String); 5] = [
        ("description", description),
        (
            "amount",
            format!(
                "{}.{:02}",
                rng.random_range(100..5_000_000),
                rng.random_range(0..100)
            ),
        ),
        (
            "status",
            STATUSES[rng.random_range(0..STATUSES.len())].to_owned(),
        ),
        (
            "manager",
            MANAGERS[rng.random_range(0..MANAGERS.len())].to_owned(),
        ),
        (
            "currency",
            CURRENCIES[rng.random_range(0..CURRENCIES.len())].to_owned(),
        ),
    ];
    let extra = rng.random_range(0..=optional.len());
    for (k, v) in optional.into_iter().take(extra) {
        attrs.insert(k.to_owned(), v);
    }
    let mut tags = BTreeMap::new();
    if rng.random_range(0..5) == 0 {
        tags.insert(
            "retention".to_owned(),
            ["10y", "25y", "permanent"][rng.random_range(0..3)].to_owned(),
        );
        if rng.random_bool(0.5) {
            tags.insert(
                "classification".to_owned(),
                ["internal", "confidential"][rng.random_range(0..2)].to_owned(),
            );
        }
    }
    let created_ms = CREATED_FROM_MS + rng.random_range(0..CREATED_SPAN_MS);
    let size = rng.random_range(10_000..20_000_000);
    let bucket = BUCKETS[rng.random_range(0..BUCKETS.len())];
    ObjectRecord {
        bucket: bucket.to_owned(),
        file_id: format!("{:032x}", i),
        storage_path: format!("gen/{:02x}/{i}", i % 256),
        size,
        etag: format!("{:032x}", rng.random::<u128>()),
        sha256: format!("{:032x}{:032x}", rng.random::<u128>(), rng.random::<u128>()),
        content_type: content_type.to_owned(),
        custom_attributes: attrs,
        tags,
        owner_id: "root".to_owned(),
        owner_name: "root".to_owned(),
        created_ms,
        updated_ms: created_ms,
        key,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_reproducible_and_realistic() {
        let a = object(42);
        assert_eq!(a, object(42));
        assert_ne!(a.key, object(43).key);
        let n = a.custom_attributes.len();
        assert!((5..=10).contains(&n), "{n}");
        assert_eq!(a.key.split('/').count(), 5, "{}", a.key);
        assert!(BUCKETS.contains(&a.bucket.as_str()));
        let with_tags = (0..1000).filter(|&i| !object(i).tags.is_empty()).count();
        assert!((100..300).contains(&with_tags), "{with_tags}");
    }
}
