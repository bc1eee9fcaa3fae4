//! Core benchmarks: each figure is printed next to the same operation on a
//! plain `HashMap<String, serde_json::Value>`, measured in the same run,
//! and as the ratio of the two. Nothing is asserted.
//!
//! Run with `cargo bench -p qom --bench core`.

use qom::{ObjectTree, Props, TypeInfo, TypeRegistry, UserCreatableClass};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// Median time per iteration over several samples of `iters` runs.
fn measure(iters: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn report(name: &str, ours: f64, reference: f64) {
    println!(
        "{name:<44} {ours:>10.1} ns   HashMap {reference:>8.1} ns   ratio {:>6.2}x",
        ours / reference
    );
}

#[derive(Default)]
struct Bench {
    values: [u64; 20],
    flag: bool,
    name: String,
}

fn registry() -> TypeRegistry {
    let types = TypeRegistry::with_builtins();
    types
        .register(TypeInfo::new("bench-type").parent("object").interface_impl("user-creatable").state::<Bench>().class_init(
            |c| {
                c.field("flag", |s: &mut Bench| &mut s.flag).description("a flag");
                c.field("name", |s: &mut Bench| &mut s.name).locked();
                // 18 more so the type has 20 properties plus `type`.
                macro_rules! fields { ($($i:literal),*) => {$(
                    c.field(concat!("v", $i), |s: &mut Bench| &mut s.values[$i]).description("a number");
                )*}}
                fields!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17);
                c.data_mut::<UserCreatableClass>().complete = Some(Arc::new(|_| Ok(())));
                Ok(())
            },
        ))
        .unwrap();
    for i in 0..200 {
        types
            .register(TypeInfo::new(format!("filler-type-{i}")).parent("container"))
            .unwrap();
    }
    types
}

fn main() {
    // `cargo test` runs benches with --bench absent; keep that fast.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scale = if quick { 1 } else { 100 };
    let types = Arc::new(registry());
    let tree = ObjectTree::new(types.clone()).unwrap();
    let obj = tree
        .object_add("bench-type", "b0", &Props::Json(Map::new()))
        .unwrap();
    let mut map: HashMap<String, Value> = HashMap::new();
    for p in obj.properties() {
        map.insert(p.name().to_owned(), obj.get(p.name()).unwrap());
    }
    println!("qom core benchmarks (median of 15 samples; reference = HashMap<String, Value>)");

    let reference_get = measure(10_000 * scale, || {
        black_box(map.get(black_box("v7")).cloned());
    });
    let ours = measure(10_000 * scale, || {
        black_box(obj.get(black_box("v7")).unwrap());
    });
    report("get by name, JSON (u64)", ours, reference_get);
    let ours = measure(10_000 * scale, || {
        black_box(obj.get_typed::<u64>(black_box("v7")).unwrap());
    });
    report("get by name, typed (u64)", ours, reference_get);

    let v = json!(12345);
    let reference_set = measure(10_000 * scale, || {
        map.insert(black_box("v7").to_owned(), black_box(&v).clone());
    });
    let ours = measure(10_000 * scale, || {
        obj.set_json(black_box("v7"), black_box(&v)).unwrap();
    });
    report("set by name, JSON (u64)", ours, reference_set);
    let ours = measure(10_000 * scale, || {
        obj.set_typed(black_box("v7"), black_box(12345u64)).unwrap();
    });
    report("set by name, typed (u64)", ours, reference_set);
    let ours = measure(10_000 * scale, || {
        obj.parse(black_box("v7"), black_box("0x3039")).unwrap();
    });
    report("set by name, keyval string (u64)", ours, reference_set);

    let props: Map<String, Value> = (0..10).map(|i| (format!("v{i}"), json!(i))).collect();
    let props = Props::Json(props);
    let mut n = 0u64;
    let reference_create = measure(1_000 * scale, || {
        let mut m: HashMap<String, Value> = HashMap::new();
        for i in 0..10 {
            m.insert(format!("v{i}"), json!(i));
        }
        black_box(m);
    });
    let ours = measure(1_000 * scale, || {
        n += 1;
        let id = format!("o{n}");
        let o = tree.object_add("bench-type", &id, &props).unwrap();
        black_box(&o);
        o.unparent();
    });
    report(
        "object_add + 10 sets + complete (+ del)",
        ours,
        reference_create,
    );

    let reference_types: HashMap<String, Value> = types
        .type_names()
        .into_iter()
        .map(|n| (n, Value::Null))
        .collect();
    let reference_lookup = measure(10_000 * scale, || {
        black_box(reference_types.get(black_box("bench-type")));
    });
    let ours = measure(10_000 * scale, || {
        black_box(types.class(black_box("bench-type")).unwrap());
    });
    report("type lookup by name (class)", ours, reference_lookup);

    let reference_list = measure(1_000 * scale, || {
        let v: Vec<Value> = map
            .keys()
            .map(|k| json!({"name": k, "type": "int"}))
            .collect();
        black_box(v);
    });
    let ours = measure(1_000 * scale, || {
        black_box(types.list_properties(black_box("bench-type")).unwrap());
    });
    report("qom-list-properties, 21 properties", ours, reference_list);
}
