//! The `berakhlak` binary: parse the command line, run the library, print the one final
//! error and choose the exit code (SPEC 7).

use std::process::ExitCode as ProcessExit;

use clap::Parser;

use berakhlak::cli::{Cli, Command, RecoverArgs, RunArgs};
use berakhlak::config::{Config, PathOverrides};
use berakhlak::error::{Error, ExitCode, Result};
use berakhlak::pipeline::{self, RunOptions};
use berakhlak::publish::commit::{self, WarehouseLock};

fn main() -> ProcessExit {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ProcessExit::from(ExitCode::Ok as u8),
        Err(e) => {
            eprintln!("berakhlak: error: {e}");
            ProcessExit::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Aggregate(args) => run_pipeline(&args, true),
        Command::Validate(args) => run_pipeline(&args, false),
        Command::Generate(opts) => {
            let summary = berakhlak::generate::run(&opts)?;
            println!(
                "generated {} records ({} bad, {} resubmissions) in {} dump(s); master {}",
                summary.records_written,
                summary.bad_records,
                summary.resubmissions,
                summary.dumps.len(),
                summary.master.display()
            );
            Ok(())
        }
        Command::Recover(args) => recover(&args),
    }
}

fn run_pipeline(args: &RunArgs, publish: bool) -> Result<()> {
    let overrides = PathOverrides {
        regions: args.regions.clone(),
        master: args.master.clone(),
        input: args.input.clone(),
        warehouse: args.warehouse.clone(),
        quarantine: args.quarantine.clone(),
    };
    let config = Config::load(&args.config, args.year, &overrides)?;
    if let Some(threads) = args.threads {
        if threads == 0 {
            return Err(Error::Usage("--threads must be at least 1".into()));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| Error::Usage(format!("--threads {threads}: {e}")))?;
    }
    let opts = RunOptions { publish, quiet: args.quiet, run_id: pipeline::new_run_id() };
    let report = pipeline::run(&config, &opts)?;
    if !args.quiet {
        pipeline::print_summary(&report, publish);
        if publish {
            println!("run_id           {}", opts.run_id);
            println!("warehouse        {}", config.paths.warehouse.display());
        } else {
            println!("validate: nothing published");
        }
    }
    Ok(())
}

fn recover(args: &RecoverArgs) -> Result<()> {
    let overrides = PathOverrides { warehouse: args.warehouse.clone(), ..PathOverrides::default() };
    let config = Config::load(&args.config, args.year, &overrides)?;
    let warehouse = &config.paths.warehouse;
    if !warehouse.is_dir() {
        return Err(Error::Usage(format!("warehouse {} does not exist", warehouse.display())));
    }
    let _lock = WarehouseLock::acquire(warehouse, &format!("pid {} (recover)", std::process::id()))?;
    let done = commit::recover(warehouse)?;
    commit::sweep_staging(&config.paths.quarantine);
    for run in &done.rolled_forward {
        println!("completed the interrupted publish of run {run}");
    }
    for run in &done.rolled_back {
        println!("discarded the unfinished staging of run {run} (it had published nothing)");
    }
    for run in &done.cleaned {
        println!("removed leftover staging of run {run} (nothing live was touched)");
    }
    if done.rolled_forward.is_empty() && done.rolled_back.is_empty() && done.cleaned.is_empty() {
        println!("nothing to recover in {}", warehouse.display());
    }
    Ok(())
}
