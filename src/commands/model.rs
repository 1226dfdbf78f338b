//! `throatseg model info`.

use std::process::ExitCode;

use throatseg::models::{Model, ModelCard};

use crate::ModelInfoArgs;

pub fn model_info(args: ModelInfoArgs) -> anyhow::Result<ExitCode> {
    let card = ModelCard::load_for(&args.file)?;
    let model = Model::load(&args.file, card.task)?;
    let operators = model.operator_summary();
    if args.json {
        let operators: serde_json::Map<String, serde_json::Value> =
            operators.into_iter().map(|(name, count)| (name, count.into())).collect();
        println!("{}", serde_json::json!({ "file": args.file.display().to_string(), "card": card, "operators": operators }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("file:    {}", args.file.display());
    println!("name:    {}", card.name);
    println!("task:    {}", card.task);
    println!("input:   {}x{} {}", card.input.width, card.input.height, card.input.layout);
    if !card.classes.is_empty() {
        println!("classes: {}", card.classes.join(", "));
    }
    println!("operators after tract's optimisation (name, first input type, count):");
    for (name, count) in operators {
        println!("  {count:4}  {name}");
    }
    Ok(ExitCode::SUCCESS)
}
