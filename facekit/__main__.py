from facekit.cli import main

raise SystemExit(main())
