"""The vocabulary of the generated articles and rules: Dutch news words that none of the shipped rules
matches, places, names, compound roots, and one trigger sentence per shipped rule."""

from __future__ import annotations

# Dutch news words that none of the shipped rules matches (checked by `Corpus.check`).
FUNCTION = """de het een van en in is dat op te zijn met voor niet die aan er om ook als bij door maar uit dan nog
wel naar over tot zo heeft hebben werd worden wordt was waren deze dit na zal zou kan moet al meer
veel hun haar hij zij ze wij men tegen onder tussen zonder volgens sinds tijdens omdat terwijl
hoewel toen nu vandaag gisteren inmiddels echter bovendien daarom ook nog steeds vooral mogelijk
waarschijnlijk""".split()  # noqa: SIM905
CONTENT = """regering minister president premier kabinet parlement partij oppositie verkiezingen burgemeester
gemeente provincie politie rechter rechtbank advocaat officier justitie onderzoek rapport verslag
bron woordvoerder persbureau krant omroep journalist demonstranten betogers protesten onlusten
staking vakbond werkgevers economie inflatie begroting belasting subsidie miljoen miljard euro
procent prijs prijzen energie gas stroom olie klimaat uitstoot water dijk rivier storm overstroming
regen droogte landbouw boeren stikstof natuur school leraren studenten universiteit zorg ziekenhuis
artsen patiënten vaccin virus besmettingen woning huur bouw infrastructuur spoor trein vliegveld
haven verkeer ongeluk brand explosie slachtoffers gewonden hulpdiensten brandweer leger soldaten
troepen grens oorlog vrede akkoord overleg top gesprek bezoek verklaring besluit wet voorstel motie
debat stemming meerderheid coalitie steun kritiek zorgen vragen antwoord maatregelen plan plannen
jaar maand week dag ochtend avond nacht land stad dorp regio wereld bevolking inwoners mensen
kinderen families bedrijven banen werkloosheid markt handel export import bank rente schulden
pensioen zei meldde kondigde verklaarde liet weten besloot stelde vroeg antwoordde benadrukte
waarschuwde ontkende bevestigde reageerde vertrok kwam ging bleef stond lag zag gaf nam vond hield
sprak schreef riep werkte leidde volgde groot klein nieuw oud belangrijk moeilijk duidelijk
onduidelijk snel langzaam hoog laag sterk zwak politieke economische sociale internationale
nationale lokale regionale officiële voormalige huidige vorige volgende eerste laatste zware lichte
grote kleine café ruïne coördinatie reünie privé één""".split()  # noqa: SIM905
PLACES = """Amsterdam Rotterdam Utrecht Eindhoven Groningen Tilburg Almere Breda Nijmegen Arnhem Haarlem
Enschede Maastricht Leiden Delft Zwolle Brussel Antwerpen Gent Luik Berlijn Parijs Londen Madrid
Rome Wenen Warschau Kiev Moskou Minsk Almaty Astana Bisjkek Tasjkent Ankara Caïro Beiroet Bagdad
Teheran Kaboel Peking Tokio Seoul Delhi Jakarta Nairobi Lagos Washington Ottawa Brasilia Lima
Santiago Bogota Havana Dakar Accra Praag Boedapest Boekarest Sofia Athene Lissabon Dublin Oslo
Stockholm Helsinki Kopenhagen Riga Tallinn Vilnius Tbilisi Jerevan Bakoe Doesjanbe Asjchabad Oeral
Karaganda Sjymkent Aktobe Taraz Pavlodar""".split()  # noqa: SIM905
FIRST = """Jan Piet Kees Anna Maria Sanne Lotte Ahmed Mohammed Fatima Karim Olga Ivan Sergej Nursultan Kassym
Emma Sophie Daan Lucas Thomas Ruben Eva Noor Sara Lisa Mark Willem Hugo Sigrid Kajsa Dilan Jesse Rob
Frans Geert Caroline Wopke Mona Hanneke Joost Bas Femke Ilse Marloes Yusuf Aylin Bram Floor Tijs
Merel""".split()  # noqa: SIM905
LAST = """Jansen Vries Dijk Bakker Visser Smit Meijer Boer Mulder Groot Bos Vos Peters Hendriks Leeuwen Dekker
Brouwer Wit Dijkstra Smits Graaf Meer Linden Kok Jacobs Haan Vermeulen Berg Heijden Schouten Beek
Willems Vliet Ven Hoekstra Maas Verhoeven Koster Dam Wal Prins Blom Huisman Peeters Jong Masimov
Tokajev Nazarbajev Petrov Ivanov Kovalenko Sokolov Aliev Nurlanov Sultanov Omarov Bekov Yilmaz Demir
Kaya Çelik Öztürk Janssens Maes Claes Goossens Wouters Mertens Dubois Lambert Martin Moreau""".split()  # noqa: SIM905
ROOTS = """water woning markt school zorg energie belasting huur bouw spoor haven grond lucht zee land stad
dorp brug weg auto fiets bus trein post bank geld werk loon prijs kosten winst handel data net
stroom gas olie kolen wind zon warmte klimaat natuur bos veld dijk rivier kust strand berg tuin park
boer vee melk graan voedsel drank vis vlees brood suiker zout koffie thee wijn bier tabak sport
voetbal tennis muziek film kunst boek krant radio nieuws pers recht wet straf boete cel hof raad
kamer partij vak bond club team groep leger vloot wacht grens douane macht staat volk leider hoofd
kind jeugd ouder student leraar arts zuster ziekte virus vaccin test medicijn huis flat kantoor
fabriek winkel hotel kerk museum theater station plein straat gracht kanaal sluis gemaal molen toren
muur dak deur raam vloer chip accu batterij kabel pijp tunnel vlucht ramp crisis hulp steun plan
wijk buurt regio euro koers beurs fonds schuld rente pensioen uitkering asiel vluchteling migratie
arbeid taal cultuur erfgoed monument storm hitte regen sneeuw ijs vorst""".split()  # noqa: SIM905
# One sentence per shipped rule: a matching article contains exactly one of them, so it raises one alert.
TRIGGERS = {
    "hoogverraad": "De voormalige minister wordt verdacht van hoogverraad.",
    "arrestaties": "Volgens de politie zijn tientallen betogers gearresteerd.",
    "dodental": "Het dodental is volgens de hulpdiensten opgelopen tot {n}.",
    "csto": "Troepen van de CSTO zijn in {place} aangekomen.",
}


def compounds(limit: int | None = None) -> list[str]:
    """Dutch-shaped compounds of two roots (woningmarkt, zorgkosten): the rare words of rules and articles."""
    common = {w.casefold() for w in CONTENT + FUNCTION + PLACES + FIRST + LAST}
    out = [a + b for a in ROOTS for b in ROOTS if a != b and a + b not in common]
    return out if limit is None else out[:limit]
