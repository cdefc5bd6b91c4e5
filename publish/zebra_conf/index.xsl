<?xml version="1.0" encoding="UTF-8"?>
<!--
  Extract stylesheet of the published union catalogue (MARC 21 merged records; UNIMARC tags too, harmless).
  Bib-1 use attributes and what feeds them (w: words, p: whole phrase, n: numeric, 0: exact key):
    Local-number (12)                001 (the cluster id; also the record id for update/delete)
    Title (4)                        245 $a$b$n$p, 246 $a, 200 $a
    Author (1003)                    100/110/111/700/710/711 $a, 701/702 $a
    ISBN (7)                         020 $a (hyphens dropped), 010 $a
    ISSN (8)                         022 $a, 011 $a
    Subject-heading (21)             6XX $a
    Date-of-publication (31)         008/07-10, else 264/260 $c's first four digits
    Date/time-last-modified (1012)   005/00-07 (yyyymmdd; Zebra's numeric index is 32-bit)
    Any (1016)                       every subfield of every data field
-->
<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:z="http://indexdata.com/zebra-2.0"
                xmlns:marc="http://www.loc.gov/MARC21/slim"
                version="1.0">
  <xsl:output method="xml" version="1.0" encoding="UTF-8" indent="yes"/>
  <xsl:template match="text()"/>

  <xsl:template match="/">
    <xsl:apply-templates select="marc:collection/marc:record|marc:record"/>
  </xsl:template>

  <xsl:template match="marc:record">
    <xsl:variable name="id" select="normalize-space(marc:controlfield[@tag='001'])"/>
    <z:record z:id="{$id}" type="update">
      <z:index name="Local-number:w Local-number:0"><xsl:value-of select="$id"/></z:index>
      <xsl:for-each select="marc:datafield[@tag='245']">
        <z:index name="Title:w Title:p">
          <xsl:for-each select="marc:subfield[@code='a' or @code='b' or @code='n' or @code='p']">
            <xsl:if test="position() &gt; 1"><xsl:text> </xsl:text></xsl:if>
            <xsl:value-of select="."/>
          </xsl:for-each>
        </z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='246' or @tag='200']/marc:subfield[@code='a']">
        <z:index name="Title:w Title:p"><xsl:value-of select="."/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='100' or @tag='110' or @tag='111' or @tag='700' or @tag='710'
                            or @tag='711' or @tag='701' or @tag='702']/marc:subfield[@code='a']">
        <z:index name="Author:w Author:p"><xsl:value-of select="."/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='020' or @tag='010']/marc:subfield[@code='a']">
        <z:index name="ISBN:w ISBN:0"><xsl:value-of select="translate(normalize-space(.), '-', '')"/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='022' or @tag='011']/marc:subfield[@code='a']">
        <z:index name="ISSN:w ISSN:0"><xsl:value-of select="normalize-space(.)"/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[starts-with(@tag, '6')]/marc:subfield[@code='a']">
        <z:index name="Subject-heading:w Subject-heading:p"><xsl:value-of select="."/></z:index>
      </xsl:for-each>
      <xsl:variable name="year008" select="substring(marc:controlfield[@tag='008'], 8, 4)"/>
      <xsl:variable name="year26x" select="substring(translate(concat(marc:datafield[@tag='264']/marc:subfield[@code='c'],
                                           marc:datafield[@tag='260']/marc:subfield[@code='c']),
                                           '[]c©. ', ''), 1, 4)"/>
      <xsl:choose>
        <xsl:when test="string-length($year008) = 4 and string(number($year008)) != 'NaN'">
          <z:index name="Date-of-publication:n Date-of-publication:w"><xsl:value-of select="$year008"/></z:index>
        </xsl:when>
        <xsl:when test="string-length($year26x) = 4 and string(number($year26x)) != 'NaN'">
          <z:index name="Date-of-publication:n Date-of-publication:w"><xsl:value-of select="$year26x"/></z:index>
        </xsl:when>
      </xsl:choose>
      <xsl:for-each select="marc:controlfield[@tag='005']">
        <z:index name="Date/time-last-modified:n Date/time-last-modified:w"><xsl:value-of select="substring(., 1, 8)"/></z:index>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield/marc:subfield">
        <z:index name="Any:w"><xsl:value-of select="."/></z:index>
      </xsl:for-each>
    </z:record>
  </xsl:template>
</xsl:stylesheet>
