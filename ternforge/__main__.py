from ternforge.gen.cli import main

main()
