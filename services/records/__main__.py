from services.records.app import main

main()
