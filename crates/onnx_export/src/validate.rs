//! Structural validation of a [`Model`].

use std::collections::{HashMap, HashSet};

use crate::{ir_version_for_opset, ExportError, Model, ValueInfo, MAX_OPSET};

/// Where a value name is defined.
#[derive(Clone, Copy)]
enum Def {
    GraphInput,
    Initializer,
    /// Output of the node with this index.
    NodeOutput(usize),
}

/// Display label of node `i`: its name, or `#i` when unnamed.
pub(crate) fn node_label(name: &str, i: usize) -> String {
    if name.is_empty() {
        format!("#{i}")
    } else {
        name.to_owned()
    }
}

fn describe(def: Def, nodes: &[crate::Node]) -> String {
    match def {
        Def::GraphInput => "graph input".to_owned(),
        Def::Initializer => "initializer".to_owned(),
        Def::NodeOutput(i) => format!("output of node '{}'", node_label(&nodes[i].name, i)),
    }
}

fn check_static_dims(what: &'static str, v: &ValueInfo) -> Result<(), ExportError> {
    if v.dims.iter().any(|&d| d < 1) {
        return Err(ExportError::BadDims {
            what,
            name: v.name.clone(),
            dims: v.dims.clone(),
            reason: "all dims must be >= 1 (static shapes)",
        });
    }
    Ok(())
}

pub(crate) fn validate(model: &Model) -> Result<(), ExportError> {
    let min_ir = ir_version_for_opset(model.opset)?;
    let max_ir = ir_version_for_opset(MAX_OPSET)?;
    if !(min_ir..=max_ir).contains(&model.ir_version) {
        return Err(ExportError::IrVersion {
            ir_version: model.ir_version,
            opset: model.opset,
            min: min_ir,
            max: max_ir,
        });
    }

    let g = &model.graph;
    if g.name.is_empty() {
        return Err(ExportError::EmptyGraphName);
    }

    // Every value name (graph input, initializer, node output) and where it is defined.
    let mut defs: HashMap<&str, Def> = HashMap::new();
    // Checks that `name` is non-empty and not yet defined.
    let define = |defs: &HashMap<&str, Def>, name: &str, def: Def, what: String| {
        if name.is_empty() {
            return Err(ExportError::EmptyName { what });
        }
        if let Some(&first) = defs.get(name) {
            return Err(ExportError::DuplicateName {
                name: name.to_owned(),
                first: describe(first, &g.nodes),
                second: describe(def, &g.nodes),
            });
        }
        Ok(())
    };
    for (i, v) in g.inputs.iter().enumerate() {
        define(&defs, &v.name, Def::GraphInput, format!("graph input #{i}"))?;
        check_static_dims("graph input", v)?;
        defs.insert(&v.name, Def::GraphInput);
    }
    for (i, t) in g.initializers.iter().enumerate() {
        define(
            &defs,
            &t.name,
            Def::Initializer,
            format!("initializer #{i}"),
        )?;
        t.check_data()?;
        defs.insert(&t.name, Def::Initializer);
    }
    let mut node_names: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let label = node_label(&n.name, i);
        if !n.name.is_empty() {
            if let Some(&first) = node_names.get(n.name.as_str()) {
                return Err(ExportError::DuplicateName {
                    name: n.name.clone(),
                    first: format!("the name of node #{first}"),
                    second: format!("the name of node #{i}"),
                });
            }
            node_names.insert(&n.name, i);
        }
        if n.op_type.is_empty() {
            return Err(ExportError::EmptyOpType { node: label });
        }
        let mut attr_names = HashSet::new();
        for a in &n.attributes {
            if a.name.is_empty() || !attr_names.insert(a.name.as_str()) {
                return Err(ExportError::BadAttribute {
                    node: label,
                    attribute: a.name.clone(),
                });
            }
        }
        for (k, o) in n.outputs.iter().enumerate() {
            define(
                &defs,
                o,
                Def::NodeOutput(i),
                format!("output #{k} of node '{label}'"),
            )?;
            defs.insert(o, Def::NodeOutput(i));
        }
    }

    // Every node input must be defined before the node.
    for (i, n) in g.nodes.iter().enumerate() {
        for input in n.inputs.iter().filter(|s| !s.is_empty()) {
            match defs.get(input.as_str()) {
                Some(Def::GraphInput | Def::Initializer) => {}
                Some(&Def::NodeOutput(j)) if j < i => {}
                Some(&Def::NodeOutput(j)) => {
                    return Err(ExportError::NotTopological {
                        node: node_label(&n.name, i),
                        input: input.clone(),
                        producer: node_label(&g.nodes[j].name, j),
                    })
                }
                None => {
                    return Err(ExportError::DanglingInput {
                        node: node_label(&n.name, i),
                        input: input.clone(),
                    })
                }
            }
        }
    }

    let mut output_names = HashSet::new();
    for (i, v) in g.outputs.iter().enumerate() {
        if v.name.is_empty() {
            return Err(ExportError::EmptyName {
                what: format!("graph output #{i}"),
            });
        }
        if !output_names.insert(v.name.as_str()) {
            return Err(ExportError::DuplicateName {
                name: v.name.clone(),
                first: "graph output".to_owned(),
                second: "graph output".to_owned(),
            });
        }
        if !defs.contains_key(v.name.as_str()) {
            return Err(ExportError::UndefinedOutput {
                output: v.name.clone(),
            });
        }
        check_static_dims("graph output", v)?;
    }

    let mut vi_names = HashSet::new();
    for (i, v) in g.value_infos.iter().enumerate() {
        if v.name.is_empty() {
            return Err(ExportError::EmptyName {
                what: format!("value_info #{i}"),
            });
        }
        if !vi_names.insert(v.name.as_str()) {
            return Err(ExportError::DuplicateName {
                name: v.name.clone(),
                first: "value_info".to_owned(),
                second: "value_info".to_owned(),
            });
        }
        if !matches!(defs.get(v.name.as_str()), Some(Def::NodeOutput(_))) {
            return Err(ExportError::UnknownValueInfo {
                name: v.name.clone(),
            });
        }
        check_static_dims("value_info", v)?;
    }
    Ok(())
}
