try:
    from harness.commands import main
except KeyboardInterrupt:  # Ctrl-C while still importing: nothing has started yet
    raise SystemExit(130) from None

raise SystemExit(main())
