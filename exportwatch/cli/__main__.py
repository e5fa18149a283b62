from exportwatch.cli import main

main()
