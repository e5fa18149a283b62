from services.classifier.app import main

main()
