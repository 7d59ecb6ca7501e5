from doops.cli import main

main()
