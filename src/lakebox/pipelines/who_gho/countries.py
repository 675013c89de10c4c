"""WHO member states with their WHO region: the stand-in's country dimension.

Codes are ISO 3166-1 alpha-3 as GHO uses them in `SpatialDim`; regions are GHO's
`ParentLocationCode` / `ParentLocation`.
"""

from __future__ import annotations

REGIONS: dict[str, str] = {
    "AFR": "Africa",
    "AMR": "Americas",
    "SEAR": "South-East Asia",
    "EUR": "Europe",
    "EMR": "Eastern Mediterranean",
    "WPR": "Western Pacific",
}

_MEMBERS = {
    "AFR": "DZA Algeria; AGO Angola; BEN Benin; BWA Botswana; BFA Burkina Faso; BDI Burundi; CPV Cabo Verde; "
    "CMR Cameroon; CAF Central African Republic; TCD Chad; COM Comoros; COG Congo; CIV Côte d'Ivoire; "
    "COD Democratic Republic of the Congo; GNQ Equatorial Guinea; ERI Eritrea; SWZ Eswatini; ETH Ethiopia; "
    "GAB Gabon; GMB Gambia; GHA Ghana; GIN Guinea; GNB Guinea-Bissau; KEN Kenya; LSO Lesotho; LBR Liberia; "
    "MDG Madagascar; MWI Malawi; MLI Mali; MRT Mauritania; MUS Mauritius; MOZ Mozambique; NAM Namibia; "
    "NER Niger; NGA Nigeria; RWA Rwanda; STP Sao Tome and Principe; SEN Senegal; SYC Seychelles; "
    "SLE Sierra Leone; ZAF South Africa; SSD South Sudan; TGO Togo; UGA Uganda; "
    "TZA United Republic of Tanzania; ZMB Zambia; ZWE Zimbabwe",
    "AMR": "ATG Antigua and Barbuda; ARG Argentina; BHS Bahamas; BRB Barbados; BLZ Belize; "
    "BOL Bolivia (Plurinational State of); BRA Brazil; CAN Canada; CHL Chile; COL Colombia; CRI Costa Rica; "
    "CUB Cuba; DMA Dominica; DOM Dominican Republic; ECU Ecuador; SLV El Salvador; GRD Grenada; "
    "GTM Guatemala; GUY Guyana; HTI Haiti; HND Honduras; JAM Jamaica; MEX Mexico; NIC Nicaragua; PAN Panama; "
    "PRY Paraguay; PER Peru; KNA Saint Kitts and Nevis; LCA Saint Lucia; VCT Saint Vincent and the Grenadines; "
    "SUR Suriname; TTO Trinidad and Tobago; USA United States of America; URY Uruguay; "
    "VEN Venezuela (Bolivarian Republic of)",
    "SEAR": "BGD Bangladesh; BTN Bhutan; PRK Democratic People's Republic of Korea; IND India; IDN Indonesia; "
    "MDV Maldives; MMR Myanmar; NPL Nepal; LKA Sri Lanka; THA Thailand; TLS Timor-Leste",
    "EUR": "ALB Albania; AND Andorra; ARM Armenia; AUT Austria; AZE Azerbaijan; BLR Belarus; BEL Belgium; "
    "BIH Bosnia and Herzegovina; BGR Bulgaria; HRV Croatia; CYP Cyprus; CZE Czechia; DNK Denmark; EST Estonia; "
    "FIN Finland; FRA France; GEO Georgia; DEU Germany; GRC Greece; HUN Hungary; ISL Iceland; IRL Ireland; "
    "ISR Israel; ITA Italy; KAZ Kazakhstan; KGZ Kyrgyzstan; LVA Latvia; LTU Lithuania; LUX Luxembourg; "
    "MLT Malta; MCO Monaco; MNE Montenegro; NLD Netherlands (Kingdom of the); MKD North Macedonia; NOR Norway; "
    "POL Poland; PRT Portugal; MDA Republic of Moldova; ROU Romania; RUS Russian Federation; SMR San Marino; "
    "SRB Serbia; SVK Slovakia; SVN Slovenia; ESP Spain; SWE Sweden; CHE Switzerland; TJK Tajikistan; "
    "TUR Türkiye; TKM Turkmenistan; UKR Ukraine; "
    "GBR United Kingdom of Great Britain and Northern Ireland; UZB Uzbekistan",
    "EMR": "AFG Afghanistan; BHR Bahrain; DJI Djibouti; EGY Egypt; IRN Iran (Islamic Republic of); IRQ Iraq; "
    "JOR Jordan; KWT Kuwait; LBN Lebanon; LBY Libya; MAR Morocco; OMN Oman; PAK Pakistan; QAT Qatar; "
    "SAU Saudi Arabia; SOM Somalia; SDN Sudan; SYR Syrian Arab Republic; TUN Tunisia; "
    "ARE United Arab Emirates; YEM Yemen",
    "WPR": "AUS Australia; BRN Brunei Darussalam; KHM Cambodia; CHN China; COK Cook Islands; FJI Fiji; "
    "JPN Japan; KIR Kiribati; LAO Lao People's Democratic Republic; MYS Malaysia; MHL Marshall Islands; "
    "FSM Micronesia (Federated States of); MNG Mongolia; NRU Nauru; NZL New Zealand; NIU Niue; PLW Palau; "
    "PNG Papua New Guinea; PHL Philippines; KOR Republic of Korea; WSM Samoa; SGP Singapore; "
    "SLB Solomon Islands; TON Tonga; TUV Tuvalu; VUT Vanuatu; VNM Viet Nam",
}

# (code, name, region code), ordered by code.
COUNTRIES: tuple[tuple[str, str, str], ...] = tuple(sorted(
    (entry[:3], entry[4:], region)
    for region, members in _MEMBERS.items()
    for entry in (m.strip() for m in members.split(";"))
))
