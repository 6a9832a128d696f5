"""Follow-up: the patient state (`state`), the pure rules (`rules`), the working-day calendar
(`calendar`) and the rule parameters of mappings/rules.json (`params`); the Task as FHIR (`tasks`,
pure) and the server's resources read back as facts (`facts`, pure); the I/O: the bulk loader
(`load.load_states`, also used by the indicators), the reconciliation that writes the Tasks
(`reconcile.run_followups`), the service the CLI, scheduler and subscription hook share
(`service`) and the rest-hook Subscriptions (`subscriptions`)."""
